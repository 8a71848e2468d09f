"""Policy, kill switches, the audit trail, tokens, evaluation, health and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from tether.api import schemas
from tether.api.auth import base_context, needs
from tether.domain.access import Permission
from tether.domain.errors import BadInput, Problem
from tether.domain.timefmt import parse_time
from tether.domain.views import kill_switch_dict
from tether.services import audit, evaluate, kills, leader, policy, queries, tokens
from tether.services.context import Context
from tether.services.gate import refresh
from tether.store.sql import AuditFilter

router = APIRouter(tags=["operations"], responses=schemas.ERRORS)
health = APIRouter(tags=["health"])
_READ, _OPERATE, _ADMIN = needs(Permission.READ), needs(Permission.OPERATE), needs(Permission.ADMINISTER)
AUDIT_PAGE = 500


@router.get("/v1/policy", summary="The global policy, one flat object")
def get_policy(ctx: Context = Depends(_READ)) -> dict[str, Any]:
    return policy.show_policy(ctx).to_dict()


@router.put("/v1/policy", summary="Change global policy fields (admin; validated; audited)")
def put_policy(changes: dict[str, Any], ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    return policy.set_policy(ctx, changes).to_dict()


@router.get(
    "/v1/kill-switches", response_model=schemas.KillSwitches, summary="Kill switches, active and past"
)
def list_kill_switches(active: bool = Query(False), ctx: Context = Depends(_READ)) -> dict[str, Any]:
    return {"kill_switches": [kill_switch_dict(k) for k in queries.list_kill_switches(ctx, active)]}


@router.post(
    "/v1/kill-switches", response_model=schemas.KillSwitchModel, status_code=201, summary="Kill a scope"
)
def activate(body: schemas.KillCreate, ctx: Context = Depends(_OPERATE)) -> dict[str, Any]:
    return kill_switch_dict(kills.activate(ctx, body.scope, body.reason))


@router.post("/v1/kill-switches/{kill_id}/deactivate", response_model=schemas.KillSwitchModel)
def deactivate(kill_id: str, body: schemas.WithReason, ctx: Context = Depends(_OPERATE)) -> dict[str, Any]:
    """Turn a kill switch off (a rollback's switch is released by resetting its slice)."""
    return kill_switch_dict(kills.deactivate(ctx, kill_id, body.reason))


def _time(value: str | None, name: str) -> Any:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise BadInput(f"{name}: {exc}", [Problem(str(exc), ("query", name))]) from None


@router.get("/v1/audit", response_model=schemas.AuditPage, summary="Audit events, filtered, a page at a time")
def list_audit(
    slice_id: str | None = None,
    type: str | None = None,
    since: str | None = Query(None, description="RFC 3339, inclusive"),
    until: str | None = Query(None, description="RFC 3339, exclusive"),
    cursor: int | None = Query(None, ge=0, description="the next_cursor of the previous page"),
    ctx: Context = Depends(_READ),
) -> dict[str, Any]:
    filters = AuditFilter(slice_id, type, _time(since, "since"), _time(until, "until"), cursor)
    events, next_cursor = audit.page_events(ctx, filters, AUDIT_PAGE)
    return {"events": [e.to_dict() for e in events], "next_cursor": next_cursor}


@router.get("/v1/audit/verify", response_model=schemas.Verification, summary="Recompute the hash chain")
def verify(
    head: str | None = Query(None, description="SEQ:HASH published earlier"), ctx: Context = Depends(_READ)
) -> Any:
    try:
        published = audit.parse_head(head) if head else None
    except BadInput as exc:
        raise BadInput(exc.message, [Problem(p.msg, ("query", "head")) for p in exc.problems]) from None
    report = audit.verify(ctx, published)
    return {
        "ok": report.ok,
        "events": report.count,
        "head": {"seq": report.head_seq, "hash": report.head_hash},
        "bad_seq": report.bad_seq,
        "problem": report.problem,
    }


@router.get("/v1/audit/head", response_model=schemas.Head, summary="The chain's head, to publish")
def head(ctx: Context = Depends(_READ)) -> dict[str, Any]:
    seq, digest = audit.head(ctx)
    return {"seq": seq, "hash": digest}


@router.post(
    "/v1/evaluate", response_model=schemas.Evaluation, summary="Run one evaluation cycle now (admin)"
)
def run_evaluate(ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    return evaluate.evaluate(ctx).to_dict()


@router.get("/v1/tokens", summary="Tokens (admin); secrets are never shown again")
def list_tokens(ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    return {"tokens": [t.to_dict() for t in tokens.list_tokens(ctx)]}


@router.post(
    "/v1/tokens", response_model=schemas.TokenCreated, status_code=201, summary="Create a token (admin)"
)
def create_token(body: schemas.TokenCreate, ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    token, secret = tokens.create_token(ctx, body.role, body.tenants, body.name)
    return {"token": token.to_dict(), "secret": secret}


@router.post("/v1/tokens/{token_id}/revoke", summary="Revoke a token (admin)")
def revoke_token(token_id: str, ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    return tokens.revoke_token(ctx, token_id).to_dict()


@health.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz",
    summary="The database is reachable and the gate's view is fresh",
    responses={503: {"description": "not ready: the database cannot be reached"}},
)
def readyz(request: Request) -> JSONResponse:
    ctx = base_context(request)
    try:
        view = refresh(ctx)
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    evaluator = leader.describe(request.app.state.leadership)
    return JSONResponse({"status": "ready", "gate_version": view.version, "evaluator": evaluator})
