"""API tokens: created with a role and optional tenants, secrets stored hashed, revocable, audited."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from tether.domain.access import Principal, Role
from tether.domain.audit import EventType
from tether.domain.errors import BadInput, NotAllowed, NotFound, refuse_unstorable
from tether.domain.timefmt import iso
from tether.services.context import Context
from tether.store.engine import retry_transient
from tether.store.sql import EventSubject, Tx

CONFIRMED_FOR = 900.0  # seconds a confirmed token is still recognised while the database is unreachable
TRUSTED_FOR = 1.0  # seconds `recognised` trusts a confirmation without asking the database again


class NotAuthenticated(Exception):
    """The caller's token turned out unknown or revoked inside the transaction that would have used it."""


@dataclass(frozen=True)
class Token:
    id: str
    name: str | None
    role: Role
    tenants: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "tenants": list(self.tenants),
            "created_at": iso(self.created_at),
            "revoked_at": iso(self.revoked_at),
            "active": self.revoked_at is None,
        }


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(row: dict[str, Any]) -> Token:
    return Token(
        row["id"],
        row["name"],
        Role(row["role"]),
        tuple(json.loads(row["tenants"])),
        row["created_at"],
        row["revoked_at"],
    )


def issue_in(ctx: Context, tx: Tx, role: Role, tenants: list[str], name: str | None) -> tuple[Token, str]:
    """A new token inside an open transaction; returns it and its secret (shown once)."""
    secret = "tth_" + secrets.token_urlsafe(32)
    token = Token(ctx.ids.new("tok"), name, role, tuple(tenants), ctx.clock.now(), None)
    tx.insert_token(
        {
            "id": token.id,
            "name": name,
            "role": role.value,
            "tenants": json.dumps(list(tenants)),
            "secret_hash": hash_secret(secret),
            "created_at": token.created_at,
        }
    )
    payload = {"token_id": token.id, "name": name, "role": role.value, "tenants": list(tenants)}
    tx.append_event(
        token.created_at, EventType.TOKEN_CREATED.value, ctx.actor, EventSubject(None, None, payload)
    )
    return token, secret


@retry_transient
def create_token(
    ctx: Context, role: str, tenants: list[str] | None = None, name: str | None = None
) -> tuple[Token, str]:
    """Create a token (admin); its secret is returned once and stored only as a hash."""
    ctx.principal.require_unrestricted("managing tokens")
    try:
        chosen = Role(role)
    except ValueError:
        raise BadInput.at(
            "role", f"must be one of {', '.join(r.value for r in Role)}, got {role!r}"
        ) from None
    clean = [t.strip() for t in tenants or []]
    refuse_unstorable(name=name, tenant="".join(clean))
    if any(not t for t in clean):
        raise BadInput.at("tenant", "a tenant name may not be empty")
    with ctx.db.transaction(write=True) as conn:
        return issue_in(ctx, Tx(conn), chosen, sorted(set(clean)), name)


def list_tokens(ctx: Context) -> list[Token]:
    ctx.principal.require_unrestricted("managing tokens")
    with ctx.db.transaction(write=False) as conn:
        return [_token(r) for r in Tx(conn).tokens()]


@retry_transient
def revoke_token(ctx: Context, token_id: str) -> Token:
    ctx.principal.require_unrestricted("managing tokens")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        row = tx.token(token_id)
        if row is None:
            raise NotFound(f"no token {token_id!r}")
        if row["revoked_at"] is not None:
            raise NotAllowed(f"token {token_id} is already revoked")
        now = ctx.clock.now()
        tx.revoke_token(token_id, now)
        payload = {"token_id": token_id, "name": row["name"], "role": row["role"]}
        tx.append_event(now, EventType.TOKEN_REVOKED.value, ctx.actor, EventSubject(None, None, payload))
    forget(ctx, token_id)
    return _token({**row, "revoked_at": now})


def forget(ctx: Context, token_id: str) -> None:
    """Drop this process's confirmations of a token: its next request asks the database."""
    for digest, (principal, _) in list(ctx.confirmed_tokens.items()):
        if principal.id == token_id:
            ctx.confirmed_tokens.pop(digest, None)


def recognised(ctx: Context, secret: str) -> tuple[Principal, str] | None:
    """The principal and secret hash of a token this process confirmed within TRUSTED_FOR, without asking
    the database; None when the database must be asked (`authenticate`).

    For routes whose own transaction checks the token again (`active_in`), so that a revocation acts
    there at once, from this process or any other; the trust only lets such a request start.
    """
    digest = hash_secret(secret)
    known = ctx.confirmed_tokens.get(digest)
    if known is None or time.monotonic() - known[1] > TRUSTED_FOR:
        return None
    return known[0], digest


def active_in(ctx: Context, tx: Tx, digests: set[str]) -> set[str]:
    """Those of these secret hashes that name an active token, as this transaction reads them."""
    active = tx.active_token_hashes(digests)
    for digest in digests - active:
        ctx.confirmed_tokens.pop(digest, None)
    return active


def authenticate(ctx: Context, secret: str) -> Principal | None:
    """The principal of an active token's secret, or None.

    Every call asks the database. When the database cannot answer, a token this process confirmed within
    CONFIRMED_FOR is still recognised, so that the gate can keep answering from memory, and then `stale`
    (everything else needs the database and answers 503 anyway).
    """
    digest = hash_secret(secret)
    try:
        with ctx.db.transaction(write=False) as conn:
            row = Tx(conn).token_by_hash(digest)
    except OperationalError:
        known = ctx.confirmed_tokens.get(digest)
        if known is None or time.monotonic() - known[1] > CONFIRMED_FOR:
            raise
        return known[0]
    if row is None or row["revoked_at"] is not None:
        ctx.confirmed_tokens.pop(digest, None)
        return None
    principal = Principal(row["id"], row["name"], Role(row["role"]), frozenset(json.loads(row["tenants"])))
    ctx.confirmed_tokens[digest] = (principal, time.monotonic())
    return principal
