"""Slices and their transitions: create, read with evidence, start a canary, promote, roll back, reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from tether.api import schemas
from tether.api.auth import needs
from tether.domain.access import Permission
from tether.services import lifecycle, queries
from tether.services.context import Context

router = APIRouter(prefix="/v1/slices", tags=["slices"], responses=schemas.ERRORS)
_READ, _OPERATE, _ADMIN = needs(Permission.READ), needs(Permission.OPERATE), needs(Permission.ADMINISTER)


@router.get("", response_model=schemas.Slices, summary="Every slice the token may see, with its evidence")
def list_slices(
    state: str | None = Query(None, description="only slices in this state"),
    tenant: str | None = Query(None, description="only slices naming this tenant"),
    ctx: Context = Depends(_READ),
) -> dict[str, Any]:
    return {"slices": queries.list_slices(ctx, state, tenant)}


@router.post("", response_model=schemas.SliceModel, status_code=201, summary="Create a slice (in shadow)")
def create_slice(body: schemas.SliceCreate, ctx: Context = Depends(_OPERATE)) -> dict[str, Any]:
    return queries.view_of(ctx, lifecycle.create_slice(ctx, body.scope, body.policy))


@router.get(
    "/{slice_id}", response_model=schemas.SliceModel, summary="One slice with its evidence and verdict"
)
def get_slice(slice_id: str, ctx: Context = Depends(_READ)) -> dict[str, Any]:
    return queries.get_slice(ctx, slice_id)


@router.get("/{slice_id}/recall", summary="Executed closures of the attempt with no outcome yet")
def recall(slice_id: str, ctx: Context = Depends(_READ)) -> dict[str, Any]:
    return queries.recall(ctx, slice_id)


@router.post("/{slice_id}/canary", response_model=schemas.SliceModel, summary="Start a canary")
def start_canary(
    slice_id: str, body: schemas.CanaryStart, ctx: Context = Depends(_OPERATE)
) -> dict[str, Any]:
    if body.override_cooldown:
        ctx.principal.require(Permission.ADMINISTER)
    s = lifecycle.start_canary(
        ctx,
        slice_id,
        signed_off_by=body.signed_off_by,
        reason=body.reason,
        if_ready=body.if_ready,
        override_cooldown=body.override_cooldown,
    )
    return queries.view_of(ctx, s)


@router.post("/{slice_id}/promote", response_model=schemas.SliceModel, summary="Forced promotion (admin)")
def promote(slice_id: str, body: schemas.WithReason, ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    return queries.view_of(ctx, lifecycle.promote(ctx, slice_id, body.reason))


@router.post(
    "/{slice_id}/rollback", response_model=schemas.SliceModel, summary="Roll back now; kills the scope"
)
def rollback(slice_id: str, body: schemas.WithReason, ctx: Context = Depends(_OPERATE)) -> dict[str, Any]:
    return queries.view_of(ctx, lifecycle.roll_back(ctx, slice_id, body.reason))


@router.post(
    "/{slice_id}/reset", response_model=schemas.SliceModel, summary="Back to shadow; releases the switch"
)
def reset(slice_id: str, body: schemas.WithReason, ctx: Context = Depends(_OPERATE)) -> dict[str, Any]:
    return queries.view_of(ctx, lifecycle.reset(ctx, slice_id, body.reason))


@router.put(
    "/{slice_id}/policy", response_model=schemas.SliceModel, summary="Override policy fields for a slice"
)
def slice_policy(slice_id: str, changes: dict[str, Any], ctx: Context = Depends(_ADMIN)) -> dict[str, Any]:
    return queries.view_of(ctx, lifecycle.set_slice_policy(ctx, slice_id, changes))
