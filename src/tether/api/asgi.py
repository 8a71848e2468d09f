"""Plain ASGI for the middlewares: the type names, and a receive that hands over buffered messages first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def replay(messages: list[Message], then: Receive) -> Receive:
    """A receive callable that hands over buffered messages, then the client's own (e.g. a disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        return await then()

    return receive
