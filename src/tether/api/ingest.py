"""Routes the orchestrator and the review tooling call: decisions, the gate, outcomes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from tether.api import errors, schemas
from tether.api.asgi import Receive, Scope, Send, replay
from tether.api.auth import CHALLENGE, needs
from tether.domain.access import Permission, Principal
from tether.domain.errors import Forbidden
from tether.services import decide, gate, outcomes, tokens
from tether.services.batching import GroupCommit
from tether.services.context import Context

router = APIRouter(prefix="/v1", tags=["ingest"], responses=schemas.ERRORS)
_INGEST = needs(Permission.INGEST)
INLINE_ITEMS = 64  # a batch this small is parsed on the event loop; a larger one in a worker thread
MAX_CALLERS = 1024  # callers whose acting context the decisions lane keeps


class DecisionsLane:
    """ASGI middleware, inside the request ids and metrics: a short way for POST /v1/decisions.

    The request the orchestrator sends all day (a JSON array of objects, from a bearer token this process
    confirmed within the last second and whose role may ingest) is parsed by the domain's own validator
    and awaited on the event loop, without the router, the generic route's thread hops and its model
    validation; its token is read again in the transaction that records it, so a revocation acts at once.
    Any other request (no or unknown token, another role, a body that is not such an array, another
    content type) goes on to the generic route, so that its error is exactly the one it always was.
    """

    def __init__(self, app: ASGIApp, route: object) -> None:
        self.app, self.route = app, route
        self._callers: dict[Principal, Context] = {}  # the service context acting as each caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/decisions":
            await self.app(scope, receive, send)
            return
        message = await receive()  # the body limit has gathered the whole body into one message
        if message["type"] != "http.request" or message.get("more_body", False):
            await self.app(scope, replay([message], receive), send)
            return
        scope["route"] = self.route  # named in the latency metrics as the router names it
        request = Request(scope, receive)
        try:
            response = await self._decide(request, message.get("body", b""))
        except Exception as exc:
            response = errors.response_for(request, exc)
            if response is None:
                raise
        if response is None:
            await self.app(scope, replay([message], receive), send)
            return
        await response(scope, receive, send)

    async def _decide(self, request: Request, body: bytes) -> Response | None:
        """The answer of the short way, or None when the request is for the generic route."""
        if request.headers.get("content-type") != "application/json":
            return None
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        ctx: Context = request.app.state.ctx
        bearer = secret.strip() if scheme.lower() == "bearer" else ""
        known = tokens.recognised(ctx, bearer) if bearer else None
        if known is None:
            return None
        principal, digest = known
        try:
            principal.require(Permission.INGEST)
            items = json.loads(body)
        except (Forbidden, ValueError):
            return None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            return None
        committer: GroupCommit = request.app.state.committer
        acting = self._acting(ctx, principal)
        try:
            if len(items) > INLINE_ITEMS:
                answers = await run_in_threadpool(committer.decide, acting, items, digest)
            else:
                answers = await _decided(committer, acting, items, digest)
        except tokens.NotAuthenticated as exc:
            raise HTTPException(401, str(exc), headers=CHALLENGE) from None
        return Response(results_json(answers), media_type="application/json")

    def _acting(self, ctx: Context, principal: Principal) -> Context:
        acting = self._callers.get(principal)
        if acting is None:
            if len(self._callers) >= MAX_CALLERS:
                self._callers.clear()
            acting = self._callers[principal] = ctx.acting_as(principal)
        return acting


_ANSWER_FIELDS = [name for name in schemas.Answer.model_fields if name != "decision_id"]
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def results_json(answers: list[decide.DecisionAnswer]) -> bytes:
    """The body the generic route would send for these answers (schemas.Decisions, as FastAPI writes it:
    declared fields in order, defaults included, then the others), written directly: each distinct answer
    is encoded once per response, and only its decision id per result."""
    encoded: dict[int, tuple[Any, str]] = {}
    parts = []
    for result in answers:
        known = encoded.get(id(result.answer))
        if known is None or known[0] is not result.answer:  # ids are reused once freed: check identity
            fields = result.to_dict()
            ordered = {name: fields.get(name) for name in _ANSWER_FIELDS}
            ordered.update((k, v) for k, v in fields.items() if k not in ordered and k != "decision_id")
            known = encoded[id(result.answer)] = (result.answer, _compact(ordered)[1:])
        parts.append(f'{{"decision_id":{_compact(result.decision_id)},{known[1]}')
    return f'{{"results":[{",".join(parts)}]}}'.encode()


async def _decided(
    committer: GroupCommit, ctx: Context, items: list[Any], token: str
) -> list[decide.DecisionAnswer]:
    """The group committer's answers, awaited on the event loop rather than in a worker thread."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def settle() -> None:
        if not done.done():
            done.set_result(None)

    def wake() -> None:
        loop.call_soon_threadsafe(settle)

    pending = committer.submit(ctx, items, token, then=wake)
    await done
    return committer.answers(pending)


@router.post(
    "/decisions",
    response_model=schemas.Decisions,
    openapi_extra=schemas.body_doc(schemas.DecisionDoc, many=True),
    summary="Resolve and record the agent's decisions (one round trip: what tether answers is what runs)",
)
def post_decisions(
    request: Request, items: list[dict[str, Any]] = Body(...), ctx: Context = Depends(_INGEST)
) -> dict[str, Any]:
    committer: GroupCommit = request.app.state.committer  # concurrent requests share one commit
    return {"results": [a.to_dict() for a in committer.decide(ctx, items)]}


def install(app: FastAPI) -> None:
    """The decisions lane, inside the middlewares added after it (request ids, latency metrics)."""
    route = next(r for r in router.routes if getattr(r, "endpoint", None) is post_decisions)
    app.add_middleware(DecisionsLane, route=route)


@router.post(
    "/gate",
    response_model=schemas.Answer,
    response_model_exclude_none=True,
    openapi_extra=schemas.body_doc(schemas.AlertDoc, many=False),
    summary="Read-only: which mode would this alert get? Records nothing",
)
def post_gate(alert: dict[str, Any] = Body(...), ctx: Context = Depends(_INGEST)) -> dict[str, Any]:
    answer = decide.DecisionAnswer("", gate.gate(ctx, alert)).to_dict()
    del answer["decision_id"]
    return answer


@router.post(
    "/outcomes",
    response_model=schemas.Outcomes,
    openapi_extra=schemas.body_doc(schemas.OutcomeDoc, many=True),
    summary="Record what alerts really were; rollbacks they trigger happen in the same request",
)
def post_outcomes(items: list[dict[str, Any]] = Body(...), ctx: Context = Depends(_INGEST)) -> dict[str, Any]:
    return outcomes.record_outcomes(ctx, items).to_dict()
