"""`tether serve`: uvicorn over create_app, configured from TETHER_* settings (one app per worker)."""

from __future__ import annotations

import os
import socket
from typing import Any

from fastapi import FastAPI

from tether import config
from tether.api.app import create_app
from tether.api.logs import configure_logging
from tether.bootstrap import build
from tether.services.webhooks import DeliveryPolicy


def app_factory() -> FastAPI:
    """Build the app in a worker process from the environment the parent process prepared."""
    settings = config.from_env()
    configure_logging(settings.log_format)
    ctx = build(settings)
    ctx.require_initialised()
    delivery = DeliveryPolicy(settings.webhook_max_attempts, settings.webhook_backoff_seconds)
    return create_app(
        ctx,
        evaluate_every=settings.evaluate_every or None,
        deliver_every=settings.webhook_every or None,
        delivery=delivery,
        watch=True,
    )


def serve(host: str, port: int, workers: int, env: dict[str, str]) -> None:
    """Run uvicorn; `env` carries the flags to the worker processes as TETHER_* variables."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ.update(env)
    options: dict[str, Any] = {"factory": True, "log_config": None, "timeout_graceful_shutdown": 10}
    if workers == 1:
        uvicorn.run("tether.api.server:app_factory", host=host, port=port, **options)
        return
    config = uvicorn.Config("tether.api.server:app_factory", host=host, port=port, workers=workers, **options)
    sock = config.bind_socket()
    # The workers' connections come from this socket and keep its options. Without TCP_NODELAY, a reply
    # written in two parts (head, then body) waits for the client's delayed ACK: 40 ms per request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    Multiprocess(config, sockets=[sock]).run()
