"""Webhooks: subscriptions, an outbox written with each audit event, and delivery with backoff.

Delivery is at least once: a worker leases due rows, posts them, then marks them delivered or
schedules the next try with exponential backoff; after `max_attempts` a delivery is dead-lettered.
A worker that dies mid-delivery leaves a lease that expires, and the row is sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from tether.domain.audit import AuditEvent, EventType, canonical_json
from tether.domain.errors import BadInput, NotFound, refuse_unstorable
from tether.domain.timefmt import iso
from tether.services.context import Context
from tether.store.engine import retry_transient
from tether.store.sql import Tx

SIGNATURE_HEADER = "X-Tether-Signature"
LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 3600.0
    timeout_seconds: float = 5.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(
            seconds=min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))
        )


def _check(url: str, events: list[str], secret: str) -> list[str]:
    refuse_unstorable(url=url, events="".join(events), secret=secret)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput.at("url", f"must be an http(s) URL, got {url!r}")
    known = {e.value for e in EventType} | {"*"}
    clean = sorted({e.strip() for e in events if e.strip()})
    if not clean:
        raise BadInput.at("events", "name at least one event type (or *)")
    unknown = [e for e in clean if e not in known]
    if unknown:
        raise BadInput.at("events", f"unknown event type {unknown[0]!r}")
    if len(secret) < 16:
        raise BadInput.at("secret", "must be at least 16 characters")
    return clean


@retry_transient
def add(ctx: Context, url: str, events: list[str], secret: str) -> dict[str, Any]:
    ctx.principal.require_unrestricted("managing webhooks")
    types = _check(url, events, secret)
    row = {
        "id": ctx.ids.new("wh"),
        "url": url,
        "events": json.dumps(types),
        "secret": secret,
        "created_at": ctx.clock.now(),
    }
    with ctx.db.transaction(write=True) as conn:
        Tx(conn).insert_webhook(row)
    return _public(row)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": json.loads(row["events"]),
        "created_at": iso(row["created_at"]),
        "removed_at": iso(row.get("removed_at")),
    }


def list_webhooks(ctx: Context) -> list[dict[str, Any]]:
    ctx.principal.require_unrestricted("managing webhooks")
    with ctx.db.transaction(write=False) as conn:
        return [_public(r) for r in Tx(conn).webhooks()]


@retry_transient
def remove(ctx: Context, webhook_id: str) -> None:
    ctx.principal.require_unrestricted("managing webhooks")
    with ctx.db.transaction(write=True) as conn:
        if not Tx(conn).remove_webhook(webhook_id, ctx.clock.now()):
            raise NotFound(f"no webhook {webhook_id!r}")


def deliveries(ctx: Context, status: str | None = None) -> list[dict[str, Any]]:
    ctx.principal.require_unrestricted("managing webhooks")
    if status is not None and status not in ("pending", "delivered", "dead"):
        raise BadInput.at("status", "must be pending, delivered or dead")
    with ctx.db.transaction(write=False) as conn:
        rows = Tx(conn).deliveries(status)
    return [{**r, "next_at": iso(r["next_at"]), "delivered_at": iso(r["delivered_at"])} for r in rows]


def message(event: AuditEvent) -> bytes:
    """The body: the audit event plus a Slack-compatible `text`."""
    where = f" on {event.scope}" if event.scope else ""
    reasons = event.payload.get("reasons") or []
    why = f": {'; '.join(str(r) for r in reasons)}" if reasons else ""
    text = f"Tether: {event.type}{where}{why}"
    return canonical_json({**event.to_dict(), "text": text}).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, signature: str, timeout: float) -> str | None:
    """None when delivered (2xx), else why not."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature,
            "User-Agent": "tether-webhooks",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return None if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return type(exc).__name__ + (f": {exc.reason}" if isinstance(exc, urllib.error.URLError) else "")


def deliver_due(ctx: Context, policy: DeliveryPolicy, limit: int = 50) -> int:
    """Send what is due now; returns how many were delivered."""
    now = ctx.clock.now()
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        claimed = tx.claim_deliveries(now, now + LEASE, limit)
        events = {c["event_seq"]: tx.event(c["event_seq"]) for c in claimed}
    delivered = 0
    for c in claimed:
        event = events[c["event_seq"]]
        assert event is not None
        body = message(event)
        problem = _post(c["url"], body, sign(c["secret"], body), policy.timeout_seconds)
        done_at = ctx.clock.now()
        if problem is None:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": done_at, "last_error": None}
            delivered += 1
        elif c["attempts"] + 1 >= policy.max_attempts:
            values = {"status": "dead", "last_error": problem}
        else:
            values = {"next_at": done_at + policy.delay(c["attempts"] + 1), "last_error": problem}
        with ctx.db.transaction(write=True) as conn:
            Tx(conn).finish_delivery(c["id"], values)
    return delivered
