"""Routes the orchestrator and the review tooling call: decisions, the gate, outcomes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request

from tether.api import schemas
from tether.api.auth import needs
from tether.domain.access import Permission
from tether.services import decide, gate, outcomes
from tether.services.batching import GroupCommit
from tether.services.context import Context

router = APIRouter(prefix="/v1", tags=["ingest"], responses=schemas.ERRORS)
_INGEST = needs(Permission.INGEST)


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
