"""Dashboard forms (POST): log in and out, slice transitions with a reason and a confirm step, kill switches.

Every POST checks the session's CSRF token and the role on the server, then calls the same service
as the API; a refusal comes back as the form again, with the problem next to the field it names.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from tether.domain.access import GRANTS, Permission
from tether.domain.errors import BadInput, TetherError
from tether.services import dashboard, kills, lifecycle, queries, tokens
from tether.services.context import Context
from tether.web import present
from tether.web.common import WebError, acting, base_context, check_csrf, page, require, session
from tether.web.pages import GET, kill_switches_page
from tether.web.session import COOKIE, LOGIN_COOKIE, MAX_AGE, WebSession, issue, login_nonce

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class SliceAction:
    """A slice transition the dashboard offers: who may, what it does, and its button."""

    title: str
    button: str
    permission: Permission
    warning: str


ACTIONS: dict[str, SliceAction] = {
    "canary": SliceAction(
        "Start a canary",
        "Start canary",
        Permission.OPERATE,
        "The agent's closes on this scope will be executed from now on, and a new attempt's evidence starts.",
    ),
    "rollback": SliceAction(
        "Roll back",
        "Roll back now",
        Permission.OPERATE,
        "The slice goes to rolled_back and a kill switch on its whole scope answers killed at once.",
    ),
    "reset": SliceAction(
        "Reset to shadow",
        "Reset to shadow",
        Permission.OPERATE,
        "The slice returns to shadow and its rollback kill switch is released.",
    ),
    "promote": SliceAction(
        "Force promotion",
        "Force promotion",
        Permission.ADMINISTER,
        "The canary becomes active without meeting the promotion criteria; the event records it as forced.",
    ),
}


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_form(
    request: Request, status: int = 200, problem: str | None = None, target: str = "/"
) -> Response:
    nonce = login_nonce()
    response = page(
        request, None, "login.html", code=status, title="Log in", check=nonce, next=target, problem=problem
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=600,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/login",
    )
    return response


@router.api_route("/login", methods=GET)
def login_page(request: Request) -> Response:
    return login_form(request, target=_safe_next(request.query_params.get("next")))


@router.post("/login")
def login(request: Request, token: str = Form(""), check: str = Form(""), next: str = Form("/")) -> Response:
    """A token in, a session cookie out (HttpOnly, SameSite=Strict); the token itself is never stored."""
    target = _safe_next(next)
    if not check or not hmac.compare_digest(check.encode(), request.cookies.get(LOGIN_COOKIE, "").encode()):
        return login_form(request, 403, "the login form expired: try again", target)
    if not token.strip():
        return login_form(request, 422, "token: give the token's secret (tth_...)", target)
    principal = tokens.authenticate(base_context(request), token.strip())
    if principal is None:
        return login_form(request, 401, "token: unknown or revoked token", target)
    found = dashboard.session_of(base_context(request), principal.id)
    if found is None or Permission.READ not in GRANTS[principal.role]:
        return login_form(
            request, 403, f"token: role {principal.role.value} may not read the dashboard", target
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        issue(principal.id, found.key_material),
        max_age=MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.api_route("/logout", methods=GET)
def logout_page(request: Request, s: WebSession = Depends(session)) -> Response:
    return page(request, s, "logout.html", title="Log out")


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""), s: WebSession = Depends(session)) -> Response:
    check_csrf(s, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


def _action(name: str) -> SliceAction:
    found = ACTIONS.get(name)
    if found is None:
        raise WebError(404, f"no slice action {name!r} (one of {', '.join(ACTIONS)})")
    return found


class SliceForm(BaseModel):
    """The confirm form of a slice transition, as posted."""

    csrf: str = ""
    reason: str = ""
    signed_off_by: str = ""
    if_ready: str = ""
    override_cooldown: str = ""  # admin only, as in the API


def _confirm(
    request: Request,
    s: WebSession,
    slice_id: str,
    name: str,
    refused: tuple[int, TetherError, SliceForm] | None = None,
) -> Response:
    """The confirm page; after a refusal, with the form as sent and the problem next to its field."""
    action = _action(name)
    view = queries.get_slice(acting(request, s), slice_id)
    status, problem, form = refused or (200, None, SliceForm(signed_off_by=s.principal.name or ""))
    return page(
        request,
        s,
        "confirm.html",
        code=status,
        title=f"{action.title}: {view['scope'] or '(global)'}",
        s=view,
        name=name,
        action=action,
        problem=problem.message if problem else None,
        fields=present.error_fields(problem) if problem else {},
        form=form.model_dump(),
    )


@router.api_route("/slices/{slice_id}/{name}", methods=GET)
def confirm_page(request: Request, slice_id: str, name: str, s: WebSession = Depends(session)) -> Response:
    """The confirm step: what the transition does, and its required reason."""
    require(s, _action(name).permission)
    return _confirm(request, s, slice_id, name)


@router.post("/slices/{slice_id}/{name}")
def slice_action(
    request: Request,
    slice_id: str,
    name: str,
    form: Annotated[SliceForm, Form()],
    s: WebSession = Depends(session),
) -> Response:
    check_csrf(s, form.csrf)
    action = _action(name)
    require(s, action.permission)
    if form.override_cooldown:
        require(s, Permission.ADMINISTER)
    try:
        _transition(acting(request, s), slice_id, name, form)
    except TetherError as exc:
        return _confirm(request, s, slice_id, name, (present.status_of(exc), exc, form))
    return RedirectResponse(f"/slices/{slice_id}?done={name}", status_code=303)


def _transition(ctx: Context, slice_id: str, name: str, form: SliceForm) -> None:
    """The lifecycle service behind each button; the reason is required for every one of them."""
    reason = form.reason
    if not reason.strip():
        raise BadInput.at("reason", "give a reason; it goes into the audit trail")
    if name == "canary":
        signed = form.signed_off_by.strip() or None
        if signed is None and not form.if_ready:
            raise BadInput.at(
                "signed_off_by", "name who signs off, or tick “only if the go-live criteria are met”"
            )
        lifecycle.start_canary(
            ctx,
            slice_id,
            signed_off_by=signed,
            reason=reason,
            if_ready=bool(form.if_ready),
            override_cooldown=bool(form.override_cooldown),
        )
    elif name == "rollback":
        lifecycle.roll_back(ctx, slice_id, reason)
    elif name == "reset":
        lifecycle.reset(ctx, slice_id, reason)
    else:
        lifecycle.promote(ctx, slice_id, reason)


@router.post("/kill-switches")
def activate(
    request: Request,
    pair: list[str] = Form([]),
    everything: str = Form(""),
    reason: str = Form(""),
    csrf: str = Form(""),
    s: WebSession = Depends(session),
) -> Response:
    """A kill switch on the scope picked from known values (one `dimension=value` per dimension)."""
    check_csrf(s, csrf)
    require(s, Permission.OPERATE)
    chosen = [p for p in pair if p.strip()]
    form = {p.partition("=")[0]: p for p in chosen} | {"reason": reason, "everything": everything}
    try:
        if not chosen and not everything:
            raise BadInput.at("scope", "pick at least one value, or tick “every alert” to kill everything")
        kill = kills.activate(acting(request, s), ",".join(chosen), reason)
    except TetherError as exc:
        return kill_switches_page(request, s, present.status_of(exc), exc.message, form)
    return RedirectResponse(f"/kill-switches?done=activated&id={kill.id}", status_code=303)


def _deactivate_page(
    request: Request, s: WebSession, kill_id: str, status: int = 200, problem: TetherError | None = None
) -> Response:
    ctx = acting(request, s)
    found = [k for k in queries.list_kill_switches(ctx) if k.id == kill_id]
    if not found:
        raise WebError(404, f"no kill switch {kill_id!r}")
    return page(
        request,
        s,
        "deactivate.html",
        code=status,
        title=f"Deactivate kill switch {kill_id}",
        k=found[0],
        problem=problem.message if problem else None,
        fields=present.error_fields(problem) if problem else {},
    )


@router.api_route("/kill-switches/{kill_id}/deactivate", methods=GET)
def deactivate_page(request: Request, kill_id: str, s: WebSession = Depends(session)) -> Response:
    require(s, Permission.OPERATE)
    return _deactivate_page(request, s, kill_id)


@router.post("/kill-switches/{kill_id}/deactivate")
def deactivate(
    request: Request,
    kill_id: str,
    reason: str = Form(""),
    csrf: str = Form(""),
    s: WebSession = Depends(session),
) -> Response:
    check_csrf(s, csrf)
    require(s, Permission.OPERATE)
    try:
        kills.deactivate(acting(request, s), kill_id, reason)
    except TetherError as exc:
        return _deactivate_page(request, s, kill_id, present.status_of(exc), exc)
    return RedirectResponse(f"/kill-switches?done=deactivated&id={kill_id}", status_code=303)
