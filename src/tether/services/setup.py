"""init: migrate the schema and, on a fresh database, create the first admin token."""

from __future__ import annotations

from dataclasses import dataclass

from tether.domain.access import Role
from tether.services.context import Context
from tether.services.tokens import issue_in
from tether.store.sql import Tx


@dataclass(frozen=True)
class InitResult:
    created_token: str | None  # the secret, shown once; None when the database was already initialised
    token_id: str | None


def init(ctx: Context) -> InitResult:
    """Idempotent: migrate; print a first admin token only when there is none yet."""
    ctx.db.migrate()
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        if tx.token_count() > 0:
            return InitResult(None, None)
        token, secret = issue_in(ctx, tx, Role.ADMIN, [], "first admin")
    return InitResult(secret, token.id)
