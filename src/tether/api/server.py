"""`tether serve`: uvicorn over create_app, configured from the environment (one app per worker)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from tether import config
from tether.api.app import create_app
from tether.bootstrap import build

_EVALUATE_EVERY = "TETHER_EVALUATE_EVERY"


def app_factory() -> FastAPI:
    """Build the app in a worker process from TETHER_* settings."""
    settings = config.from_env()
    ctx = build(settings)
    ctx.require_initialised()
    every = float(os.environ.get(_EVALUATE_EVERY, "60"))
    return create_app(ctx, evaluate_every=every if every > 0 else None)


def serve(host: str, port: int, workers: int, evaluate_every: float, log_level: str = "info") -> None:
    import uvicorn

    os.environ[_EVALUATE_EVERY] = str(evaluate_every)
    uvicorn.run(
        "tether.api.server:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        timeout_graceful_shutdown=10,
    )
