"""One table maps Tether's errors to HTTP statuses; every 4xx has the same JSON envelope."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.domain.errors import (
    BadInput,
    Forbidden,
    NotFound,
    NotInitialised,
    Refused,
    ReplayConflict,
    TetherError,
    TooLarge,
)

log = logging.getLogger("tether.api")

STATUS: list[tuple[type[TetherError], int]] = [  # first match wins: subclasses before their bases
    (NotInitialised, 503),
    (BadInput, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (TooLarge, 413),
    (ReplayConflict, 409),
    (Refused, 409),
    (TetherError, 400),
]


def envelope(message: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": message, "errors": errors or []}


def status_of(exc: TetherError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def _problems(exc: TetherError) -> list[dict[str, Any]]:
    if isinstance(exc, BadInput):
        out = []
        for p in exc.problems:
            where: list[Any] = [] if p.loc[:1] in (("query",), ("path",)) else ["body"]
            item: dict[str, Any] = {
                "loc": [*where, *([p.index] if p.index is not None else []), *p.loc],
                "msg": p.msg,
            }
            if p.index is not None:
                item["index"] = p.index
            out.append(item)
        return out
    if isinstance(exc, ReplayConflict) and exc.index is not None:
        return [{"loc": ["body", exc.index, "decision_id"], "msg": exc.message, "index": exc.index}]
    return []


def tether_error(exc: TetherError) -> JSONResponse:
    return JSONResponse(envelope(exc.message, _problems(exc)), status_code=status_of(exc))


def database_unavailable(exc: OperationalError) -> JSONResponse:
    # The database is unreachable or went away mid-request: nothing was committed; retry later.
    log.warning("database unavailable: %s", exc.orig)
    return JSONResponse(
        envelope("database unavailable: nothing was recorded; retry later"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(envelope(str(exc.detail)), status_code=exc.status_code, headers=headers or None)


def response_for(request: Request, exc: Exception) -> JSONResponse | None:
    """The answer to an error raised outside the routes (the decisions lane), as the handlers give it;
    None for an error that has none (the server's 500)."""
    if isinstance(exc, TetherError):
        return tether_error(exc)
    if isinstance(exc, OperationalError):
        return database_unavailable(exc)
    if isinstance(exc, StarletteHTTPException):
        return http_error(request, exc)
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the envelope."""

    @app.exception_handler(TetherError)
    async def _tether(_: Request, exc: TetherError) -> JSONResponse:
        return tether_error(exc)

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        return database_unavailable(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = list(e.get("loc", ()))
            if e.get("type") == "json_invalid":  # loc[1] is a character position, not a batch index
                loc = ["body"]
            item: dict[str, Any] = {"loc": loc, "msg": str(e.get("msg", "invalid"))}
            if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], int):
                item["index"] = loc[1]
            errors.append(item)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return JSONResponse(envelope(f"{where}: {first['msg']}", errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the API serves on this path, from its OpenAPI paths (Starlette names only one route's)."""
    methods: set[str] = set()
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, request.url.path):
            methods |= {m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
