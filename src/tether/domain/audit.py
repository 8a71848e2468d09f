"""The audit trail's hash chain: RFC 8785 canonical JSON, event hashes, and chain verification."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64


class EventType(StrEnum):
    SLICE_CREATED = "slice.created"
    SLICE_POLICY_CHANGED = "slice.policy_changed"
    SLICE_RESET = "slice.reset"
    CANARY_STARTED = "canary.started"
    CANARY_PROMOTED = "canary.promoted"
    CANARY_ROLLED_BACK = "canary.rolled_back"
    CANARY_HELD = "canary.held"
    CANARY_RESTARTED = "canary.restarted"
    CANARY_WOULD_PROMOTE = "canary.would_promote"
    CANARY_WOULD_ROLL_BACK = "canary.would_roll_back"
    KILL_SWITCH_ACTIVATED = "kill_switch.activated"
    KILL_SWITCH_DEACTIVATED = "kill_switch.deactivated"
    POLICY_CHANGED = "policy.changed"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"


@dataclass(frozen=True)
class AuditEvent:
    """One link of the chain, as stored and as shown."""

    seq: int
    at: str
    type: str
    actor: Mapping[str, Any]
    slice_id: str | None
    scope: str | None
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The event without prev_hash and hash: what the hash covers."""
        return {
            "seq": self.seq,
            "at": self.at,
            "type": self.type,
            "actor": dict(self.actor),
            "slice_id": self.slice_id,
            "scope": self.scope,
            "payload": dict(self.payload),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def _number(value: float) -> str:
    """A number as ECMAScript's Number.prototype.toString writes it (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError("canonical JSON has no NaN or Infinity")
    if value == 0:
        return "0"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    digits = mantissa.replace(".", "")
    point = mantissa.index(".") if "." in mantissa else len(mantissa)
    exponent = point + (int(exp_text) if exp_text else 0)  # value = 0.DIGITS * 10**exponent
    stripped = digits.lstrip("0")
    exponent -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    k, n = len(digits), exponent
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    tail = ("." + digits[1:]) if k > 1 else ""
    return f"{sign}{digits[0]}{tail}e{'+' if e > 0 else '-'}{abs(e)}"


def canonical_json(value: Any) -> str:
    """RFC 8785 (JCS) serialisation: sorted keys, no whitespace, ECMAScript numbers."""
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]).encode("utf-16-be"))
        return (
            "{"
            + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{canonical_json(v)}" for k, v in items)
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    raise TypeError(f"not JSON: {type(value).__name__}")


def event_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of prev_hash followed by the canonical JSON of the event body."""
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying a chain: ok, or the first bad seq and why."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    problem: str | None = None


def verify_chain(events: Iterable[AuditEvent], head: tuple[int, str] | None = None) -> ChainReport:
    """Recompute the chain in seq order; name the first event that breaks it."""
    prev, expected_seq, count = GENESIS, 1, 0
    seen_head = head is None
    for event in events:
        count += 1
        if event.seq != expected_seq:
            where = min(event.seq, expected_seq)
            return ChainReport(
                False, count, expected_seq - 1, prev, where, f"expected seq {expected_seq}, found {event.seq}"
            )
        if event.prev_hash != prev:
            return ChainReport(
                False, count, event.seq - 1, prev, event.seq, "prev_hash does not match the event before"
            )
        if event_hash(prev, event.body()) != event.hash:
            return ChainReport(
                False, count, event.seq - 1, prev, event.seq, "hash does not match the event's content"
            )
        if head is not None and event.seq == head[0]:
            if event.hash != head[1]:
                return ChainReport(
                    False, count, event.seq, event.hash, event.seq, "hash differs from the published head"
                )
            seen_head = True
        prev, expected_seq = event.hash, event.seq + 1
    if not seen_head and head is not None:
        return ChainReport(
            False, count, expected_seq - 1, prev, head[0], "the published head is missing: chain truncated"
        )
    return ChainReport(True, count, expected_seq - 1, prev)
