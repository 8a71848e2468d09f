"""What every dashboard route shares: templates, the session, permission checks, and live fragments."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from tether.domain.access import Permission
from tether.domain.errors import Forbidden
from tether.services import queries
from tether.services.context import Context
from tether.web import present
from tether.web.session import COOKIE, WebSession, read

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
TEMPLATES.env.filters.update(
    precision=present.precision,
    age=present.age,
    short_time=present.short_time,
    actor=present.actor,
)
TEMPLATES.env.globals.update(next_step=present.next_step)
POLL = "every 2s"  # how often open pages ask for live fragments
# Everything comes from Tether itself; no framing (clickjacking), no referrer, no cached pages of evidence.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class WebError(Exception):
    """A dashboard request refused before any service ran: bad CSRF token, missing role, unknown page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class LoginNeeded(Exception):
    """No valid session: the browser goes to the login page (htmx requests are told to go there)."""


def base_context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def session(request: Request) -> WebSession:
    """The caller's session, checked against its token on every request; LoginNeeded otherwise."""
    found = read(base_context(request), request.cookies.get(COOKIE))
    if found is None:
        raise LoginNeeded()
    if not _may(found, Permission.READ):
        raise LoginNeeded()
    return found


def _may(s: WebSession, permission: Permission) -> bool:
    try:
        s.principal.require(permission)
    except Forbidden:
        return False
    return True


def acting(request: Request, s: WebSession) -> Context:
    """The service context acting as the session's token: its rights, tenants and name in the trail."""
    return base_context(request).acting_as(s.principal)


def require(s: WebSession, permission: Permission) -> None:
    """The server's own role check behind every button (the page hides buttons the role may not use)."""
    try:
        s.principal.require(permission)
    except Forbidden as exc:
        raise WebError(403, exc.message) from None


def check_csrf(s: WebSession, sent: str | None) -> None:
    if not s.csrf_ok(sent):
        raise WebError(403, "the form's security token is missing or wrong: reload the page and try again")


def _values(request: Request, who: WebSession | None, values: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {"me": None, "csrf": "", "can_operate": False, "can_admin": False, "poll": POLL}
    if who is not None:
        extra.update(
            me=who.principal,
            csrf=who.csrf,
            can_operate=_may(who, Permission.OPERATE),
            can_admin=_may(who, Permission.ADMINISTER),
        )
    return {"request": request, **extra, **values}


def banner(request: Request, s: WebSession) -> Markup:
    """The active kill switches, in red on top of every page, kept live."""
    kills = queries.list_kill_switches(acting(request, s), active_only=True)
    return live_html(request, s, "_banner.html", "kill-banner", "/fragments/banner", kills=kills)[0]


def page(request: Request, who: WebSession | None, template: str, code: int = 200, **values: Any) -> Response:
    """A page rendered for the session's user, under the live kill-switch banner (or for nobody: the login
    page), with its HTTP status."""
    if who is not None:
        values.setdefault("banner", banner(request, who))
    return TEMPLATES.TemplateResponse(
        request, template, _values(request, who, values), status_code=code, headers=HEADERS
    )


def live_html(
    request: Request, who: WebSession, template: str, element_id: str, url: str, **values: Any
) -> tuple[Markup, str]:
    """A fragment that open pages poll, wrapped in its polling element, and the digest of its content.

    The digest rides in the fragment's own polling URL, so the server can answer 204 (nothing to swap)
    while nothing changed, and focus and scroll stay put.
    """
    inner = TEMPLATES.get_template(template).render(_values(request, who, values))
    digest = hashlib.sha256(inner.encode()).hexdigest()[:16]
    sep = "&" if "?" in url else "?"
    poll_url = escape(f"{url}{sep}{urlencode({'seen': digest})}")
    html = Markup(
        f'<div id="{element_id}" hx-get="{poll_url}" hx-trigger="{POLL}" hx-swap="outerHTML">{inner}</div>'
    )
    return html, digest


def live(
    request: Request, who: WebSession, template: str, element_id: str, url: str, **values: Any
) -> Response:
    """The polled answer: the fragment, or 204 while its content is what the page already shows."""
    html, digest = live_html(request, who, template, element_id, url, **values)
    if request.query_params.get("seen") == digest:
        return Response(status_code=204, headers=HEADERS)
    return HTMLResponse(html, headers=HEADERS)


def with_query(path: str, **params: str | None) -> str:
    """A path with the non-empty parameters as its query string."""
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}" if kept else path
