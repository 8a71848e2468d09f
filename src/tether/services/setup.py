"""init: migrate the schema and, on a fresh database, create the first admin token."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from tether.domain.audit import EventType
from tether.services.context import Context
from tether.store.sql import EventSubject, Tx


@dataclass(frozen=True)
class InitResult:
    created_token: str | None  # the secret, shown once; None when the database was already initialised
    token_id: str | None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def init(ctx: Context) -> InitResult:
    """Idempotent: migrate; print a first admin token only when there is none yet."""
    ctx.db.migrate()
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        if tx.token_count() > 0:
            return InitResult(None, None)
        token_id = ctx.ids.new("tok")
        secret = "tth_" + secrets.token_urlsafe(32)
        now = ctx.clock.now()
        tx.insert_token(
            {
                "id": token_id,
                "name": "first admin",
                "role": "admin",
                "tenants": json.dumps([]),
                "secret_hash": hash_secret(secret),
                "created_at": now,
            }
        )
        payload = {"token_id": token_id, "name": "first admin", "role": "admin", "tenants": []}
        tx.append_event(now, EventType.TOKEN_CREATED.value, ctx.actor, EventSubject(None, None, payload))
    return InitResult(secret, token_id)
