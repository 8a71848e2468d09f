"""create_app(ctx): the FastAPI app, its error envelope, body limits and the evaluator loop."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from tether import web
from tether.api import admin, errors, ingest, logs, metrics, slices
from tether.api.asgi import Message, Receive, Scope, Send, replay
from tether.api.errors import envelope
from tether.domain.access import Principal, Role
from tether.domain.model import SYSTEM
from tether.services import evaluate, webhooks
from tether.services.batching import GroupCommit
from tether.services.context import Context
from tether.services.leader import Leadership
from tether.services.watch import GateWatcher

MAX_BODY = 4 * 1024 * 1024
log = logging.getLogger("tether.api")


class BodyLimit:
    """Answer 413 with the error envelope when a request body is over the limit, declared or streamed.

    The body is read here first (at most `limit` bytes are ever held), then handed to the app.
    """

    def __init__(self, app: Any, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, replay([message], receive), send)  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replay([whole], receive), send)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(envelope(f"request body over {self.limit} bytes")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Standby(Exception):
    """Raised by periodic work that another replica does; the task then reports no last run."""


class PeriodicTask:
    """Runs a function every N seconds in a thread until stopped; failures are logged, never fatal."""

    def __init__(self, name: str, every: float, work: Callable[[], object]) -> None:
        self.name, self.every, self.work = name, every, work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tether-{name}", daemon=True)
        self.last_run: float | None = None

    def age(self) -> float | None:
        return None if self.last_run is None else time.monotonic() - self.last_run

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        unreachable = False
        while not self._stop.wait(self.every):
            try:
                self.work()
                self.last_run = time.monotonic()
            except Standby:
                self.last_run = None
            except OperationalError as exc:  # the database is down: say so once, not every cycle
                if not unreachable:
                    log.warning("%s paused: database unavailable: %s", self.name, str(exc.orig).strip())
                unreachable = True
                continue
            except Exception:  # keep the loop alive: the next cycle retries, and the error is logged
                log.exception("%s cycle failed", self.name)
            if unreachable:
                log.info("%s resumed: the database answers again", self.name)
                unreachable = False


def _system(ctx: Context) -> Context:
    """The context background work runs as: the system actor with admin rights."""
    return dataclasses.replace(ctx.acting_as(Principal("system", "tether", Role.ADMIN)), actor=SYSTEM)


def _evaluate_if_leading(system: Context, leadership: Leadership) -> None:
    """One cycle when this replica holds the evaluator's lock; standby replicas just try again later."""
    epoch = leadership.claim()
    if epoch is None:
        raise Standby  # not a cycle: the age of the last cycle keeps growing on standby replicas
    evaluate.evaluate(system, epoch=epoch)


def create_app(
    ctx: Context,
    evaluate_every: float | None = None,
    deliver_every: float | None = 1.0,
    delivery: webhooks.DeliveryPolicy | None = None,
    watch: bool = False,
) -> FastAPI:
    """The app over a service context, with the evaluator loop and the webhook worker while it serves.

    `watch` keeps the gate's view fresh from a thread (LISTEN/NOTIFY on PostgreSQL) instead of reading
    the version on every gate question.
    """
    system = _system(ctx)
    leadership = Leadership(ctx.db) if evaluate_every else None
    evaluator = (
        PeriodicTask("evaluator", evaluate_every, lambda: _evaluate_if_leading(system, leadership))
        if evaluate_every and leadership is not None
        else None
    )
    watcher = GateWatcher(ctx) if watch else None
    policy = delivery or webhooks.DeliveryPolicy()
    courier = (
        PeriodicTask("webhooks", deliver_every, lambda: webhooks.deliver_due(system, policy))
        if deliver_every
        else None
    )
    tasks = [t for t in (evaluator, courier) if t is not None]
    committer = GroupCommit(ctx.db)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if watcher is not None:
            watcher.start()
        for task in tasks:
            task.start()
        try:
            yield
        finally:
            for task in tasks:
                task.stop()
            if watcher is not None:
                watcher.stop()
            if leadership is not None:
                leadership.release()
            committer.stop()
            ctx.db.dispose()

    app = FastAPI(
        title="Tether",
        version="0.1.0",
        description="Progressive autonomy for AI triage agents: shadow → canary → active.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.leadership = leadership
    app.state.committer = committer
    errors.install(app)
    ingest.install(app)  # before the metrics and request ids, so that they wrap it
    metrics.install(
        app,
        ctx,
        evaluator.age if evaluator is not None else lambda: None,
        (lambda: leadership.leading) if leadership is not None else lambda: None,
    )
    for router in (ingest.router, slices.router, admin.router, admin.health):
        app.include_router(router)
    web.install(app, ctx)  # the dashboard at /, over the same services and tokens
    logs.install(app)
    app.add_middleware(BodyLimit)
    return app
