"""create_app(ctx): the FastAPI app, its error envelope, body limits and the evaluator loop."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tether.api import admin, errors, ingest, metrics, slices
from tether.api.errors import envelope
from tether.domain.access import Principal, Role
from tether.domain.model import SYSTEM
from tether.services import evaluate
from tether.services.context import Context

MAX_BODY = 4 * 1024 * 1024
log = logging.getLogger("tether.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """Answer 413 with the error envelope when a request body is over the limit, declared or streamed."""

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        import json

        body = json.dumps(envelope(f"request body over {self.limit} bytes")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class EvaluatorLoop:
    """Runs `evaluate` every N seconds in a thread, so time-based promotions happen on their own."""

    def __init__(self, ctx: Context, every: float) -> None:
        system = Principal("system", "evaluator", Role.ADMIN)
        self.ctx = dataclasses.replace(ctx.acting_as(system), actor=SYSTEM)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tether-evaluator", daemon=True)
        self.last_run: float | None = None

    def age(self) -> float | None:
        import time

        return None if self.last_run is None else time.monotonic() - self.last_run

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        import time

        while not self._stop.wait(self.every):
            try:
                evaluate.evaluate(self.ctx)
                self.last_run = time.monotonic()
            except Exception:  # keep the loop alive: the next cycle retries, and the error is logged
                log.exception("evaluation cycle failed")


def create_app(ctx: Context, evaluate_every: float | None = None) -> FastAPI:
    """The app over a service context; with evaluate_every, the evaluator loop runs while it serves."""

    loop = EvaluatorLoop(ctx, evaluate_every) if evaluate_every else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loop is not None:
            loop.start()
        try:
            yield
        finally:
            if loop is not None:
                loop.stop()
            ctx.db.dispose()

    app = FastAPI(
        title="Tether",
        version="0.1.0",
        description="Progressive autonomy for AI triage agents: shadow → canary → active.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    errors.install(app)
    metrics.install(app, ctx, loop.age if loop is not None else lambda: None)
    for router in (ingest.router, slices.router, admin.router):
        app.include_router(router)
    app.add_middleware(BodyLimit)
    return app
