"""The web dashboard: server-rendered pages (Jinja2 + htmx) over the same services and tokens as the API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from tether.services.context import Context
from tether.web.common import HEADERS, HERE, TEMPLATES, LoginNeeded, WebError, with_query

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def install(app: FastAPI, ctx: Context) -> None:
    """Mount the dashboard at / (pages, forms, live fragments, static files), outside the OpenAPI schema."""
    from tether.web import actions, pages

    app.state.ctx = ctx
    paths: dict[str, set[str]] = {}
    for router in (pages.router, actions.router):
        app.include_router(router)
        for route in router.routes:
            if isinstance(route, APIRoute):
                paths.setdefault(route.path, set()).update(route.methods or ())
    for path, allowed in paths.items():
        _refuse_other_methods(app, path, allowed)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(LoginNeeded)
    async def _login(request: Request, _: LoginNeeded) -> Response:
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        if request.method not in ("GET", "HEAD"):  # a form posted without a session does nothing
            return _error(request, 403, "Refused", "log in first: this form needs a session")
        target = request.url.path if request.method in ("GET", "HEAD") else "/"
        return RedirectResponse(with_query("/login", next=target if target != "/" else None), status_code=303)

    @app.exception_handler(WebError)
    async def _refused(request: Request, exc: WebError) -> Response:
        return _error(request, exc.status, "Refused" if exc.status == 403 else "Not found", exc.message)


def _error(request: Request, status: int, title: str, message: str) -> Response:
    values = {"title": title, "message": message, "me": None}
    return TEMPLATES.TemplateResponse(request, "error.html", values, status_code=status, headers=HEADERS)


def _refuse_other_methods(app: FastAPI, path: str, allowed: set[str]) -> None:
    """A 405 naming the methods the dashboard serves on this path (the API's own 405 reads OpenAPI only)."""
    others = [m for m in _METHODS if m not in allowed]
    allow = ", ".join(m for m in _METHODS if m in allowed)

    def refuse() -> Response:
        return HTMLResponse("<p>Method not allowed.</p>", status_code=405, headers={"Allow": allow})

    if others:
        app.add_api_route(path, refuse, methods=others, include_in_schema=False, name=f"405 {path}")
