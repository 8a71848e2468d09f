"""The audit trail: RFC 8785 canonical JSON, the hash rule of DESIGN §6, chain verification, the append-only
storage, and the `tether audit` commands."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import sqlite3
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, Cli, decision, iso, outcome
from tether.domain.audit import AuditEvent, EventType, canonical_json, event_hash, verify_chain
from tether.domain.model import Actor, ActorType
from tether.services import audit, decide, kills, lifecycle, outcomes, policy
from tether.services.context import Context, FixedClock
from tether.store.sql import AuditFilter, EventSubject, Tx

COLUMNS = ("seq", "at", "type", "actor", "slice_id", "scope", "payload", "prev_hash", "hash")
ZEROS = "0" * 64

# ---------------------------------------------------------------------------------------------------------
# helpers


def _clock(ctx: Context) -> FixedClock:
    assert isinstance(ctx.clock, FixedClock)
    return ctx.clock


class _Raw:
    """The test database opened without any Tether code, as an auditor or an attacker would: sqlite3 on the
    SQLite file, psycopg on the PostgreSQL schema the URL names. Statements use `?` placeholders on both."""

    def __init__(self, db_url: str) -> None:
        self.backend = "postgres" if db_url.startswith("postgresql") else "sqlite"
        self.con: Any
        self.error: type[Exception]
        if self.backend == "postgres":
            import psycopg

            # libpq reads the schema from the URL's own query, options=-csearch_path%3D<schema>
            self.con = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://", 1))
            self.error = psycopg.DatabaseError
        else:
            self.con = sqlite3.connect(db_url.removeprefix("sqlite:///"))
            self.error = sqlite3.DatabaseError

    def __enter__(self) -> _Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend == "postgres":
            sql, params = sql.replace("?", "%s"), params or None
        cursor = self.con.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def commit(self) -> None:
        self.con.commit()


def _raw_events(db_url: str) -> list[dict[str, Any]]:
    """The audit rows as the database holds them, read with the plain driver alone (no Tether code)."""
    with _Raw(db_url) as db:
        rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_events ORDER BY seq")
    events = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    for event in events:
        event["actor"], event["payload"] = json.loads(event["actor"]), json.loads(event["payload"])
    return events


def _ecmascript_numbers(value: Any) -> Any:
    """Integral floats become integers, as ECMAScript prints them (7.0 -> 7); other floats must already print
    alike in Python and ECMAScript, which holds for every float Tether's own events carry."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        assert "e" not in repr(value), f"{value!r} is outside what this re-implementation covers"
        return value
    if isinstance(value, dict):
        return {k: _ecmascript_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ecmascript_numbers(v) for v in value]
    return value


def _design_hash(prev_hash: str, event: dict[str, Any]) -> str:
    """DESIGN §6 as an auditor re-implements it: SHA-256 of prev_hash + canonical JSON of the rest."""
    body = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
    text = json.dumps(_ecmascript_numbers(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + text).encode("utf-8")).hexdigest()


def _as_attacker(db_url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Someone with write access to the database switches the append-only triggers off, as the owner of the
    file (SQLite: drop them) or of the table (PostgreSQL: disable them) can, and edits the trail."""
    with _Raw(db_url) as db:
        if db.backend == "postgres":
            db.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        else:
            db.execute("DROP TRIGGER audit_events_no_update")
            db.execute("DROP TRIGGER audit_events_no_delete")
        for sql, params in statements:
            db.execute(sql, params)
        db.commit()


def _populate(ctx: Context) -> dict[str, str]:
    """A realistic trail of ten events over three hours (init already wrote seq 1 at T0).

    T0: 1 token.created, 2-3 slice.created; T0+1h: 4 canary.started, 5 canary.rolled_back,
    6 kill_switch.activated; T0+2h: 7 slice.reset, 8 kill_switch.deactivated, 9 kill_switch.activated
    (non-ASCII reason), 10 slice.policy_changed.
    """
    clock = _clock(ctx)
    a = lifecycle.create_slice(ctx, "tenant=acme,rule_family=phishing")
    b = lifecycle.create_slice(ctx, "tenant=acme", {"max_missed_tp": 1})
    clock.advance(timedelta(hours=1))
    lifecycle.start_canary(ctx, a.id, signed_off_by="j.doe", reason="shadow looked fine")
    [answer] = decide.decide(ctx, [decision(1, decided_at=iso(clock.now()))])
    assert answer.answer.execute
    outcomes.record_outcomes(ctx, [outcome(1, "true_positive")])
    clock.advance(timedelta(hours=1))
    lifecycle.reset(ctx, a.id, "root cause fixed")
    kills.activate(ctx, "tenant=globex", "drill: Überprüfung — 検証 \t\u0001 ✓")
    lifecycle.set_slice_policy(ctx, b.id, {"promote_after_days": 3})
    return {"a": a.id, "b": b.id}


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def tether(ctx: Context, tmp_path: Path, db_url: str) -> Cli:
    """The real CLI on the database the library context initialised (no second `tether init`)."""
    return Cli(tmp_path, db_url)


# ---------------------------------------------------------------------------------------------------------
# canonical JSON (RFC 8785)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    """Canonical JSON sorts keys at every depth and writes no whitespace between tokens."""
    value = {"b": [1, 2, {"z": None, "y": True}], "a": {"d": False, "c": "x y"}, "": 0}
    assert canonical_json(value) == '{"":0,"a":{"c":"x y","d":false},"b":[1,2,{"y":true,"z":null}]}'


def _double(hex_bits: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(hex_bits))[0])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-7, "1e-7"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (0.000001, "0.000001"),
        (7.0, "7"),
        (-3.0, "-3"),
        (0.0, "0"),
        (-0.0, "0"),
        (4.5, "4.5"),
        (0.98, "0.98"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e30, "1e+30"),
        (2e-3, "0.002"),
        (1e-27, "1e-27"),
        # RFC 8785 appendix B: IEEE 754 bit patterns and their ECMAScript text
        (_double("0000000000000001"), "5e-324"),
        (_double("8000000000000001"), "-5e-324"),
        (_double("7fefffffffffffff"), "1.7976931348623157e+308"),
        (_double("4340000000000000"), "9007199254740992"),
        (_double("4430000000000000"), "295147905179352830000"),
        (_double("44b52d02c7e14af5"), "9.999999999999997e+22"),
        (_double("44b52d02c7e14af6"), "1e+23"),
        (_double("44b52d02c7e14af7"), "1.0000000000000001e+23"),
        (_double("444b1ae4d6e2ef4e"), "999999999999999700000"),
        (_double("444b1ae4d6e2ef50"), "1e+21"),
        (_double("3eb0c6f7a0b5ed8c"), "9.999999999999997e-7"),
        (_double("3eb0c6f7a0b5ed8d"), "0.000001"),
        (_double("41b3de4355555553"), "333333333.3333332"),
        (_double("41b3de4355555557"), "333333333.33333343"),
        (_double("becbf647612f3696"), "-0.0000033333333333333333"),
        (_double("43143ff3c1cb0959"), "1424953923781206.2"),
    ],
)
def test_canonical_json_writes_numbers_as_ecmascript_does(value: float, text: str) -> None:
    """Canonical JSON writes each number as ECMAScript's Number.prototype.toString (RFC 8785 §3.2.2.3)."""
    assert canonical_json(value) == text


_ECMASCRIPT_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?(e[+-][1-9][0-9]*)?")


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_canonical_numbers_round_trip_in_ecmascript_shape(value: float) -> None:
    """Every finite float's canonical text parses back to the same float and uses an exponent only outside
    [1e-6, 1e21), as ECMAScript does."""
    text = canonical_json(value)
    assert _ECMASCRIPT_NUMBER.fullmatch(text), text
    assert float(text) == value
    assert ("e" in text) == (value != 0 and not 1e-6 <= abs(value) < 1e21), text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_canonical_json_refuses_nan_and_infinity(value: float) -> None:
    """NaN and Infinity have no canonical JSON form, so hashing them is refused."""
    with pytest.raises(ValueError):
        canonical_json({"x": value})


def test_canonical_json_matches_the_rfc_8785_example() -> None:
    """The worked example of RFC 8785 §3.2.2 serialises byte for byte as the RFC prints it."""
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected


def test_canonical_json_sorts_keys_by_utf16_code_units() -> None:
    """Keys sort by their UTF-16 code units, as in the RFC 8785 §3.2.3 example (an emoji before U+FB33)."""
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    order = list(json.loads(canonical_json(value)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_canonical_json_keeps_non_ascii_and_escapes_control_characters() -> None:
    """Non-ASCII text stays as UTF-8 characters; control characters are escaped (short forms where JSON has
    them, else lowercase \\u00xx); a DEL, a slash and U+2028 are left as they are."""
    value = 'é 検証 😀 \x00\x01\x1f \b\t\n\f\r " \\ / \x7f \u2028'
    expected = '"é 検証 😀 \\u0000\\u0001\\u001f \\b\\t\\n\\f\\r \\" \\\\ / \x7f \u2028"'
    assert canonical_json(value) == expected
    assert event_hash(ZEROS, {"s": "é"}) == hashlib.sha256((ZEROS + '{"s":"é"}').encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# the hash rule of DESIGN §6


def test_stored_hashes_follow_the_design_sentence(ctx: Context, db_url: str) -> None:
    """Each stored hash is SHA-256 of prev_hash + canonical JSON of the event without its hashes, as
    re-implemented from DESIGN §6 alone; the first prev_hash is 64 zeros, each next one the hash before it."""
    _populate(ctx)
    events = _raw_events(db_url)
    assert [e["seq"] for e in events] == list(range(1, 11))
    assert events[0]["prev_hash"] == ZEROS
    prev = ZEROS
    for event in events:
        assert event["prev_hash"] == prev, event["seq"]
        assert event["hash"] == _design_hash(prev, event), event["seq"]
        assert re.fullmatch(r"[0-9a-f]{64}", event["hash"])
        prev = event["hash"]
    assert audit.verify(ctx).ok


# ---------------------------------------------------------------------------------------------------------
# chain verification: properties over appends and tampers

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _specs(ctx: Context) -> st.SearchStrategy[list[Any]]:
    """One to six events to append: type, actor id, slice_id, scope, payload, time.

    slice_id and scope are stored as plain text, which on PostgreSQL cannot hold U+0000, so there they are
    drawn without it; SQLite stores any string. The actor and the payload are stored as JSON, which escapes
    U+0000, so they draw from every character on both.
    """
    stored = st.characters(codec="utf-8")
    if ctx.db.engine.dialect.name == "postgresql":
        stored = st.characters(codec="utf-8", exclude_characters="\x00")
    return st.lists(
        st.tuples(
            st.sampled_from([t.value for t in EventType]),
            st.text(min_size=1, max_size=8),
            st.none() | st.text(stored, max_size=8),
            st.none() | st.text(stored, max_size=16),
            st.dictionaries(st.text(max_size=8), _JSON, max_size=4),
            st.datetimes(
                min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
            ),
        ),
        min_size=1,
        max_size=6,
    )


def _appended(ctx: Context, specs: list[Any]) -> list[AuditEvent]:
    """Append events through the real store, read the chain back, and leave the database as it was."""
    with ctx.db.engine.connect() as conn:
        trans = conn.begin()
        try:
            tx = Tx(conn)
            for type_, actor, slice_id, scope, payload, at in specs:
                tx.append_event(
                    at, type_, Actor(ActorType.USER, actor), EventSubject(slice_id, scope, payload)
                )
            return tx.events()
        finally:
            trans.rollback()


def _flip(digest: str) -> str:
    return ("1" if digest[0] != "1" else "2") + digest[1:]


_EDITS: dict[str, Callable[[AuditEvent], AuditEvent]] = {
    "seq": lambda e: dataclasses.replace(e, seq=e.seq + 1000),
    "at": lambda e: dataclasses.replace(e, at=e.at + "0"),
    "type": lambda e: dataclasses.replace(e, type=e.type + ".edited"),
    "actor": lambda e: dataclasses.replace(e, actor={**e.actor, "id": f"{e.actor['id']}-mallory"}),
    "slice_id": lambda e: dataclasses.replace(e, slice_id=(e.slice_id or "") + "x"),
    "scope": lambda e: dataclasses.replace(e, scope=(e.scope or "") + "x"),
    "payload": lambda e: dataclasses.replace(
        e, payload={**e.payload, "tampered": [e.payload.get("tampered")]}
    ),
    "prev_hash": lambda e: dataclasses.replace(e, prev_hash=_flip(e.prev_hash)),
    "hash": lambda e: dataclasses.replace(e, hash=_flip(e.hash)),
}


def test_chain_verifies_after_any_appends(ctx: Context) -> None:
    """After any sequence of events appended through the store (random payloads, floats, unicode), the chain
    verifies and its head is the last event."""

    @settings(max_examples=40, deadline=None)
    @given(_specs(ctx))
    def check(specs: list[Any]) -> None:
        chain = _appended(ctx, specs)
        assert [e.seq for e in chain] == list(range(1, len(specs) + 2))
        report = verify_chain(chain)
        assert report.ok, report
        assert (report.count, report.head_seq, report.head_hash) == (
            len(chain),
            chain[-1].seq,
            chain[-1].hash,
        )
        assert verify_chain(chain, (chain[-1].seq, chain[-1].hash)).ok

    check()


def test_any_single_tamper_is_caught_at_the_first_bad_seq(ctx: Context) -> None:
    """After one edit of any field of one event, one deletion, or one swap of two events, verify fails and
    names the seq of the first event that no longer holds (a deleted last event is caught by the head)."""

    @settings(max_examples=100, deadline=None)
    @given(_specs(ctx), st.data())
    def check(specs: list[Any], data: st.DataObject) -> None:
        chain = _appended(ctx, specs)
        n, head = len(chain), (chain[-1].seq, chain[-1].hash)
        kind = data.draw(st.sampled_from(["edit", "delete", "swap"]), label="kind")
        k = data.draw(st.integers(0, n - 2 if kind == "swap" else n - 1), label="index")
        if kind == "edit":
            field = data.draw(st.sampled_from(sorted(_EDITS)), label="field")
            tampered = [*chain[:k], _EDITS[field](chain[k]), *chain[k + 1 :]]
        elif kind == "delete":
            tampered = chain[:k] + chain[k + 1 :]
        else:
            j = data.draw(st.integers(k + 1, n - 1), label="other")
            tampered = list(chain)
            tampered[k], tampered[j] = chain[j], chain[k]
        first_bad = chain[k].seq
        with_head = verify_chain(tampered, head)
        assert (with_head.ok, with_head.bad_seq) == (False, first_bad), with_head
        if not (kind == "delete" and k == n - 1):
            plain = verify_chain(tampered)
            assert (plain.ok, plain.bad_seq) == (False, first_bad), plain

    check()


# ---------------------------------------------------------------------------------------------------------
# the append-only storage


def test_update_and_delete_through_tether_engine_are_refused(ctx: Context, db_url: str) -> None:
    """UPDATE and DELETE on audit_events through Tether's own SQLAlchemy engine raise and change nothing."""
    _populate(ctx)
    before = _raw_events(db_url)
    for statement in ("UPDATE audit_events SET payload = '{}' WHERE seq = 3", "DELETE FROM audit_events"):
        with (
            pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"),
            ctx.db.transaction(write=True) as conn,
        ):
            conn.execute(sqlalchemy.text(statement))
    assert _raw_events(db_url) == before
    assert audit.verify(ctx).ok


# every column a stored event has (at_key is the instant `at` names, kept for the time filters)
_ROW = ", ".join((*COLUMNS, "at_key"))
# event 3 again, with an empty payload
_EDITED_3 = (
    f"INSERT INTO audit_events ({_ROW}) SELECT seq, at, type, actor, slice_id, scope, '{{}}', prev_hash, "
    "hash, at_key FROM audit_events WHERE seq = 3"
)
_BOTH = {
    "update": "UPDATE audit_events SET payload = '{}' WHERE seq = 3",
    "update-seq": "UPDATE audit_events SET seq = 99 WHERE seq = 10",
    "delete-one": "DELETE FROM audit_events WHERE seq = 10",
    "delete-all": "DELETE FROM audit_events",
    "upsert": f"INSERT INTO audit_events ({_ROW}) SELECT {_ROW} FROM audit_events WHERE seq = 3 "
    "ON CONFLICT (seq) DO UPDATE SET payload = '{}'",
}
# Each way of changing the trail as each database spells it; where one database lacks the statement, its
# nearest equivalent (SQLite has no TRUNCATE, PostgreSQL no INSERT OR REPLACE: an upsert replacing the row).
_CHANGES = {
    "sqlite": {
        **_BOTH,
        "insert-or-replace": _EDITED_3.replace("INSERT", "INSERT OR REPLACE", 1),
        "truncate": "DELETE FROM audit_events",
    },
    "postgres": {
        **_BOTH,
        "insert-or-replace": f"{_EDITED_3} ON CONFLICT (seq) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in _ROW.split(", ") if c != "seq"),
        "truncate": "TRUNCATE audit_events",
    },
}


@pytest.mark.parametrize("change", list(_CHANGES["sqlite"]))
def test_database_refuses_changing_the_trail(ctx: Context, db_url: str, change: str) -> None:
    """Any statement that would change or remove a stored event, from a plain connection outside Tether
    (sqlite3 or psycopg), is refused by the database itself and nothing changes."""
    _populate(ctx)
    before = _raw_events(db_url)
    with _Raw(db_url) as db:
        with pytest.raises(db.error, match="append-only"):
            db.execute(_CHANGES[db.backend][change])
        db.commit()
    assert _raw_events(db_url) == before
    assert audit.verify(ctx).ok


# ---------------------------------------------------------------------------------------------------------
# tether audit verify


def test_cli_verify_passes_on_an_intact_chain(ctx: Context, tether: Cli) -> None:
    """`tether audit verify` exits 0 on an untouched chain and reports its head."""
    _populate(ctx)
    report = tether.json("audit", "verify")
    assert report["ok"] is True
    assert report["head"] == {"seq": 10, "hash": audit.head(ctx)[1]}


def _edit_payload(db_url: str) -> None:
    _as_attacker(db_url, ("UPDATE audit_events SET payload = ? WHERE seq = 4", ('{"attempt": 1}',)))


def _delete_middle(db_url: str) -> None:
    _as_attacker(db_url, ("DELETE FROM audit_events WHERE seq = 4", ()))


def _swap_rows(db_url: str) -> None:
    swap = "UPDATE audit_events SET seq = ? WHERE seq = ?"
    _as_attacker(db_url, (swap, (-1, 4)), (swap, (4, 7)), (swap, (7, -1)))


@pytest.mark.parametrize(
    "tamper", [_edit_payload, _delete_middle, _swap_rows], ids=["edit", "delete", "reorder"]
)
def test_cli_verify_names_the_first_bad_seq(
    ctx: Context, tether: Cli, db_url: str, tamper: Callable[[str], None]
) -> None:
    """With the triggers switched off, an edited payload, a deleted middle event or two swapped rows make
    `tether audit verify` exit 1 with one line on stderr naming seq 4, the first bad one."""
    _populate(ctx)
    tamper(db_url)
    proc = tether.run("audit", "verify", expect=1)
    assert re.search(r"\bseq 4\b", _one_line(proc.stderr)), proc.stderr


# ---------------------------------------------------------------------------------------------------------
# tether audit head and verify --head


def test_cli_head_is_the_last_event_and_catches_a_truncated_tail(
    ctx: Context, tether: Cli, db_url: str
) -> None:
    """`audit head --json` is the last event's seq and hash; `verify --head` passes with it, and once the last
    events are deleted it exits 1."""
    _populate(ctx)
    last = audit.list_events(ctx)[-1]
    head = tether.json("audit", "head")
    assert (head["seq"], head["hash"]) == (last.seq, last.hash) == (10, last.hash)
    published = f"{head['seq']}:{head['hash']}"
    tether.run("audit", "verify", "--head", published)
    _as_attacker(db_url, ("DELETE FROM audit_events WHERE seq >= 9", ()))
    proc = tether.run("audit", "verify", "--head", published, expect=1)
    assert "seq" in _one_line(proc.stderr)


def test_cli_verify_head_catches_a_consistently_rewritten_chain(
    ctx: Context, tether: Cli, db_url: str
) -> None:
    """An attacker who rewrites an event and recomputes every later hash passes a plain verify, but
    `verify --head` with the published head exits 1 naming the head's seq."""
    _populate(ctx)
    old_seq, old_hash = audit.head(ctx)
    events = _raw_events(db_url)
    events[1]["payload"] = {"policy_overrides": {"max_missed_tp": 5}}
    prev = events[0]["hash"]
    for event in events[1:]:
        event["prev_hash"], event["hash"] = prev, _design_hash(prev, event)
        prev = event["hash"]
    rewrite = "UPDATE audit_events SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?"
    _as_attacker(
        db_url,
        *[
            (rewrite, (json.dumps(e["payload"], sort_keys=True), e["prev_hash"], e["hash"], e["seq"]))
            for e in events[1:]
        ],
    )
    assert audit.head(ctx) != (old_seq, old_hash)
    tether.run("audit", "verify")
    proc = tether.run("audit", "verify", "--head", f"{old_seq}:{old_hash}", expect=1)
    assert re.search(rf"\bseq {old_seq}\b", _one_line(proc.stderr)), proc.stderr


@pytest.mark.parametrize("head", ["1:abc", "1:" + "g" * 64], ids=["short", "not-hex"])
def test_cli_verify_refuses_a_malformed_head(ctx: Context, tether: Cli, head: str) -> None:
    """A --head that is not SEQ:<64 hex digits> is bad input: exit 2 with one line on stderr."""
    proc = tether.run("audit", "verify", "--head", head, expect=2)
    assert "head" in _one_line(proc.stderr)


# ---------------------------------------------------------------------------------------------------------
# tether audit list and export


def test_cli_list_json_shows_every_event_with_the_contract_keys(ctx: Context, tether: Cli) -> None:
    """`audit list --json` answers {"events": [...]} in seq order, each event with the nine keys of DESIGN §7
    and the same content the library reads."""
    _populate(ctx)
    events = tether.json("audit", "list")["events"]
    assert [e["seq"] for e in events] == list(range(1, 11))
    for event in events:
        assert set(COLUMNS) <= set(event), event
    assert events == [e.to_dict() for e in audit.list_events(ctx)]
    assert events[8]["payload"]["kill_switch"]["reason"] == "drill: Überprüfung — 検証 \t\u0001 ✓"


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["at"])


def test_cli_list_filters_narrow_the_trail(ctx: Context, tether: Cli) -> None:
    """--slice, --type, --since (inclusive) and --until (exclusive) each keep exactly the matching events;
    an event made by the CLI is stamped with TETHER_NOW and the CLI user."""
    ids = _populate(ctx)
    tether.now = T0 + timedelta(hours=3)
    tether.run("kill", "activate", "--scope", "tenant=initech", "--reason", "drill")
    events = [e.to_dict() for e in audit.list_events(ctx)]
    assert events[-1]["at"] == iso(T0 + timedelta(hours=3))
    assert events[-1]["actor"] == {"type": "user", "id": "tester"}

    def listed(*flags: str) -> list[int]:
        return [e["seq"] for e in tether.json("audit", "list", *flags)["events"]]

    def kept(keep: Callable[[dict[str, Any]], bool]) -> list[int]:
        seqs = [e["seq"] for e in events if keep(e)]
        assert 0 < len(seqs) < len(events)
        return seqs

    assert listed("--slice", ids["a"]) == kept(lambda e: e["slice_id"] == ids["a"])
    kill_events = kept(lambda e: e["type"] == "kill_switch.activated")
    assert listed("--type", "kill_switch.activated") == kill_events == [6, 9, 11]
    since = T0 + timedelta(hours=1)
    assert listed("--since", iso(since)) == kept(lambda e: _at(e) >= since) == list(range(4, 12))
    until = T0 + timedelta(hours=2)
    before_until = kept(lambda e: _at(e) < until)
    # the same instant written with an offset: 11:00+01:00 is 10:00Z
    assert listed("--until", "2026-03-02T11:00:00+01:00") == before_until == list(range(1, 7))


def test_time_filters_compare_instants_within_a_second(ctx: Context) -> None:
    """since is inclusive and until exclusive by instant, also for events stamped with a fraction of a second
    (T0 and T0+0.5 s)."""
    _clock(ctx).advance(timedelta(milliseconds=500))
    kills.activate(ctx, "tenant=globex", "drill")

    def seqs(**bounds: datetime) -> list[int]:
        return [e.seq for e in audit.list_events(ctx, AuditFilter(**bounds))]

    assert [e.at for e in audit.list_events(ctx)] == ["2026-03-02T08:00:00Z", "2026-03-02T08:00:00.500000Z"]
    assert seqs(since=T0) == [1, 2]
    assert seqs(until=T0) == []
    assert seqs(since=T0 + timedelta(milliseconds=250)) == [2]
    assert seqs(until=T0 + timedelta(milliseconds=250)) == [1]


def _parsed_lines(text: str) -> Iterator[Any]:
    assert text.endswith("\n")
    for line in text.splitlines():
        yield json.loads(line)


def test_cli_export_writes_one_json_line_per_event(ctx: Context, tether: Cli, tmp_path: Path) -> None:
    """`audit export` prints one JSON object per line, in seq order, each the same event as `audit list`;
    `--output FILE` writes the same lines to the file."""
    _populate(ctx)
    printed = tether.run("audit", "export").stdout
    assert list(_parsed_lines(printed)) == [e.to_dict() for e in audit.list_events(ctx)]
    target = tmp_path / "trail.jsonl"
    tether.run("audit", "export", "--output", target)
    assert target.read_text(encoding="utf-8") == printed


# ---------------------------------------------------------------------------------------------------------
# the events of a rollback


def _roll_back_on_missed_tp(ctx: Context, slice_id: str) -> None:
    decide.decide(ctx, [decision(1)])
    result = outcomes.record_outcomes(ctx, [outcome(1, "true_positive")])
    assert [a["action"] for a in result.actions] == ["rollback"]


def _roll_back_by_hand(ctx: Context, slice_id: str) -> None:
    lifecycle.roll_back(ctx, slice_id, "precision looks off")


@pytest.mark.parametrize(
    "roll_back", [_roll_back_on_missed_tp, _roll_back_by_hand], ids=["automatic", "manual"]
)
def test_rollback_audits_two_consecutive_events_with_evidence_and_policy(
    ctx: Context, roll_back: Callable[[Context, str], None]
) -> None:
    """A rollback writes canary.rolled_back then kill_switch.activated as consecutive events of one moment,
    both with the evidence snapshot and the policy that decided, naming the same kill switch."""
    s = lifecycle.create_slice(ctx, "tenant=acme,rule_family=phishing")
    lifecycle.start_canary(ctx, s.id, signed_off_by="j.doe", reason="pilot")
    before = len(audit.list_events(ctx))
    roll_back(ctx, s.id)
    rolled, killed = audit.list_events(ctx)[before:]
    assert (rolled.type, killed.type) == ("canary.rolled_back", "kill_switch.activated")
    assert killed.seq == rolled.seq + 1
    assert (rolled.slice_id, rolled.scope, rolled.at) == (killed.slice_id, killed.scope, killed.at)
    assert rolled.slice_id == s.id
    expected_policy = policy.show_policy(ctx).to_dict()
    for event in (rolled, killed):
        assert event.payload["policy"] == expected_policy
        assert {"decisions", "executed", "reviewed", "missed_tp", "precision"} <= set(
            event.payload["evidence"]
        )
    assert rolled.payload["evidence"] == killed.payload["evidence"]
    assert rolled.payload["kill_switch_id"] == killed.payload["kill_switch"]["id"]
