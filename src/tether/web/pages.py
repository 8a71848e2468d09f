"""Dashboard pages (GET): overview, slice, kill switches, audit, gate explorer, and their live fragments."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from markupsafe import Markup
from pydantic import BaseModel

from tether.domain.audit import AuditEvent, EventType, canonical_json
from tether.domain.errors import BadInput, TetherError
from tether.domain.model import SliceState
from tether.domain.timefmt import parse_time
from tether.services import audit, dashboard, queries
from tether.store.sql import AuditFilter
from tether.web import charts, present
from tether.web.common import acting, live, live_html, page, session, with_query
from tether.web.session import WebSession

router = APIRouter(include_in_schema=False)
GET = ["GET", "HEAD"]
AUDIT_PAGE = 100
STATES = [s.value for s in SliceState]


@router.api_route("/fragments/banner", methods=GET)
def banner_fragment(request: Request, s: WebSession = Depends(session)) -> Response:
    kills = queries.list_kill_switches(acting(request, s), active_only=True)
    return live(request, s, "_banner.html", "kill-banner", "/fragments/banner", kills=kills)


def _filters(state: str | None, tenant: str | None) -> tuple[str | None, str | None, str | None]:
    state, tenant = state or None, tenant or None
    if state is not None and state not in STATES:
        return None, tenant, f"state: unknown state {state!r} (one of {', '.join(STATES)})"
    return state, tenant, None


@router.api_route("/", methods=GET)
def overview(
    request: Request,
    state: str | None = Query(None),
    tenant: str | None = Query(None),
    s: WebSession = Depends(session),
) -> Response:
    state, tenant, problem = _filters(state, tenant)
    view = dashboard.overview(acting(request, s), state, tenant)
    url = with_query("/fragments/slices", state=state, tenant=tenant)
    return page(
        request,
        s,
        "overview.html",
        code=422 if problem else 200,
        title="Overview",
        slices=live_html(request, s, "_slices.html", "slices", url, view=view)[0],
        tenants=view.tenants,
        states=STATES,
        state=state,
        tenant=tenant,
        problem=problem,
    )


@router.api_route("/fragments/slices", methods=GET)
def slices_fragment(
    request: Request,
    state: str | None = Query(None),
    tenant: str | None = Query(None),
    s: WebSession = Depends(session),
) -> Response:
    state, tenant, _ = _filters(state, tenant)
    view = dashboard.overview(acting(request, s), state, tenant)
    url = with_query("/fragments/slices", state=state, tenant=tenant)
    return live(request, s, "_slices.html", "slices", url, view=view)


def _status_values(request: Request, s: WebSession, slice_id: str) -> dict[str, Any]:
    ctx = acting(request, s)
    view = queries.get_slice(ctx, slice_id)
    reasons: list[str] = []
    if view["state"] == SliceState.ROLLED_BACK.value:
        reasons = dashboard.overview(ctx).rollback_reasons.get(slice_id, [])
    return {"s": view, "rollback_reasons": reasons}


@router.api_route("/slices/{slice_id}", methods=GET)
def slice_page(request: Request, slice_id: str, s: WebSession = Depends(session)) -> Response:
    history = dashboard.slice_history(acting(request, s), slice_id)
    view = history.slice
    policy = view["policy"]
    url = f"/fragments/slices/{slice_id}/status"
    status = live_html(
        request, s, "_slice_status.html", "slice-status", url, **_status_values(request, s, slice_id)
    )
    return page(
        request,
        s,
        "slice.html",
        title=view["scope"] or "(global)",
        s=view,
        status=status[0],
        precision_svg=Markup(
            charts.precision_chart(
                history.precision, (policy["rollback_below_precision"], policy["promote_min_precision"])
            )
        ),
        activity_svg=Markup(charts.activity_chart(history.days)),
        events=list(reversed(history.events)),
        done=request.query_params.get("done"),
    )


@router.api_route("/fragments/slices/{slice_id}/status", methods=GET)
def slice_status(request: Request, slice_id: str, s: WebSession = Depends(session)) -> Response:
    url = f"/fragments/slices/{slice_id}/status"
    return live(request, s, "_slice_status.html", "slice-status", url, **_status_values(request, s, slice_id))


@router.api_route("/kill-switches", methods=GET)
def kill_switches(request: Request, s: WebSession = Depends(session)) -> Response:
    return kill_switches_page(request, s)


def kill_switches_page(
    request: Request,
    s: WebSession,
    status: int = 200,
    problem: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The kill switch page; the activation form comes back filled in with the problem when it was refused."""
    ctx = acting(request, s)
    every = queries.list_kill_switches(ctx)
    return page(
        request,
        s,
        "kill_switches.html",
        code=status,
        title="Kill switches",
        active=[k for k in every if k.active],
        past=sorted((k for k in every if not k.active), key=lambda k: k.deactivated_at or k.activated_at)[
            ::-1
        ][:50],
        values=dashboard.known_values(ctx),
        problem=problem,
        form=form or {},
        done=request.query_params.get("done"),
    )


class AuditQuery(BaseModel):
    """The audit page's filters, as the form sends them (empty means any)."""

    slice_id: str = ""
    type: str = ""
    since: str = ""
    until: str = ""

    def filters(self) -> AuditFilter:
        """The store's filter; BadInput names the field that is wrong."""
        if self.type and self.type not in {t.value for t in EventType}:
            raise BadInput.at("type", f"unknown event type {self.type!r}")
        return AuditFilter(
            self.slice_id.strip() or None,
            self.type or None,
            _moment(self.since, "since"),
            _moment(self.until, "until"),
        )


def _moment(text: str, name: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        return parse_time(text.strip())
    except ValueError as exc:
        raise BadInput.at(name, str(exc)) from None


@router.api_route("/audit", methods=GET)
def audit_page(
    request: Request,
    query: Annotated[AuditQuery, Query()],
    before: int | None = Query(None, ge=1),
    s: WebSession = Depends(session),
) -> Response:
    ctx = acting(request, s)
    form = query.model_dump()
    events: list[AuditEvent] = []
    older = None
    problem = None
    try:
        events, older = dashboard.recent_events(ctx, query.filters(), before, AUDIT_PAGE)
    except TetherError as exc:
        problem = exc.message
    return page(
        request,
        s,
        "audit.html",
        code=422 if problem else 200,
        title="Audit trail",
        events=events,
        chain=dashboard.chain_status(ctx),
        form=form,
        types=[t.value for t in EventType],
        problem=problem,
        older=with_query("/audit", **form, before=str(older)) if older else None,
        export=with_query("/audit/export", **form),
        pretty=lambda payload: json.dumps(payload, indent=2, sort_keys=True),
    )


@router.api_route("/audit/export", methods=GET)
def audit_export(
    request: Request, query: Annotated[AuditQuery, Query()], s: WebSession = Depends(session)
) -> Response:
    """The matching events as JSON lines in seq order, as `tether audit export` writes them."""
    ctx = acting(request, s)
    try:
        filters = query.filters()
    except BadInput as exc:
        return page(request, s, "error.html", code=422, title="Bad filter", message=exc.message)

    def lines() -> Iterator[bytes]:
        for event in audit.iter_events(ctx, filters):
            yield (canonical_json(event.to_dict()) + "\n").encode()

    headers = {"Content-Disposition": 'attachment; filename="tether-audit.jsonl"'}
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers=headers)


@router.api_route("/gate", methods=GET)
def gate_page(request: Request, s: WebSession = Depends(session)) -> Response:
    """Ask the gate about an alert's dimensions: the mode, and which slices or kill switch decided it."""
    ctx = acting(request, s)
    names = list(ctx.dims.names)
    asked = {n: request.query_params.get(n, "").strip() for n in names}
    result = None
    problem: str | None = None
    fields: dict[str, str] = {}
    status = 200
    if any(asked.values()):
        try:
            result = dashboard.explain_gate(ctx, asked)
        except TetherError as exc:
            problem, fields, status = exc.message, present.error_fields(exc), present.status_of(exc)
    return page(
        request,
        s,
        "gate.html",
        code=status,
        title="Gate explorer",
        names=names,
        asked=asked,
        values=dashboard.known_values(ctx),
        result=result,
        problem=problem,
        fields=fields,
    )
