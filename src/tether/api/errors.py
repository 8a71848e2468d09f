"""One table maps Tether's errors to HTTP statuses; every 4xx has the same JSON envelope."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
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
            item: dict[str, Any] = {
                "loc": ["body", *([p.index] if p.index is not None else []), *p.loc],
                "msg": p.msg,
            }
            if p.index is not None:
                item["index"] = p.index
            out.append(item)
        return out
    if isinstance(exc, ReplayConflict) and exc.index is not None:
        return [{"loc": ["body", exc.index, "decision_id"], "msg": exc.message, "index": exc.index}]
    return []


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the envelope."""

    @app.exception_handler(TetherError)
    async def _tether(_: Request, exc: TetherError) -> JSONResponse:
        return JSONResponse(envelope(exc.message, _problems(exc)), status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = list(e.get("loc", ()))
            item: dict[str, Any] = {"loc": loc, "msg": str(e.get("msg", "invalid"))}
            if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], int):
                item["index"] = loc[1]
            errors.append(item)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"])
        return JSONResponse(envelope(f"{where}: {first['msg']}", errors), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        return JSONResponse(envelope(str(exc.detail)), status_code=exc.status_code, headers=headers)
