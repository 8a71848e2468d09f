"""Validation of decisions and outcomes as sent: one home for the rules, shared by CLI and API."""

from __future__ import annotations

import functools
import json
import json.encoder
import math
from collections.abc import Callable, Mapping
from typing import Any

from tether.domain.errors import NUL, BadInput, refuse_unstorable
from tether.domain.model import DecisionIn, Disposition, OutcomeIn, Verdict
from tether.domain.scope import SEVERITY, Dimensions
from tether.domain.timefmt import parse_time

_DECISION_OPTIONAL = ("confidence", "model_version")
_VERDICTS = {v.value: v for v in Verdict}
_DISPOSITIONS = {d.value: d for d in Disposition}


def _canonical_encoder() -> Callable[[Any], str]:
    """Canonical JSON of a validated body (sorted keys, no spaces, UTF-8 as is): what replays compare.

    One encoder made once: `json.dumps` with these options builds a new one on every call. The C
    encoder behind it is used directly where this Python has one (its output is the same); it is built
    without a guard against circular structures, which a validated body (a flat object of strings and
    numbers, checked field by field before it is encoded) cannot have.
    """
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    native = make(None, encoder.default, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    return lambda body: "".join(native(body, 0))


_canonical = _canonical_encoder()
_OUTCOME_FIELDS = frozenset(
    ("decision_id", "tenant", "alert_id", "disposition", "source", "reviewer", "observed_at")
)


def decision_fields(dims: Dimensions) -> tuple[str, ...]:
    """The required fields of a decision, in the order errors name them."""
    return _decision_fields(dims.names)[0]


@functools.lru_cache(maxsize=8)
def _names(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


@functools.lru_cache(maxsize=8)
def _decision_fields(names: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The required fields in order, and every field a decision may have, for these dimensions."""
    required = ("decision_id", "alert_id", *names, "verdict", "decided_at")
    return required, frozenset((*required, *_DECISION_OPTIONAL))


def _text(obj: Mapping[str, Any], name: str, required: bool = True) -> str | None:
    value = obj.get(name)
    if type(value) is str and value and value.isascii() and not value[0].isspace() and NUL not in value:
        return value  # the common case, decided at once; the rest is checked in order below
    if value is None:
        if required:
            raise BadInput.at(name, "field required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadInput.at(name, "must be a non-empty string")
    refuse_unstorable(**{name: value})
    return value


def _check_object(obj: object, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise BadInput.at("body", "must be a JSON object")
    if allowed.issuperset(obj):
        return obj
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise BadInput.at(str(unknown[0]), "unknown field")
    return obj


def _dimensions(body: Mapping[str, Any], dims: Dimensions) -> dict[str, str]:
    """An alert's value on each dimension, severity as its band."""
    alert: dict[str, str] = {}
    for name in dims.names:
        value = body.get(name)
        if value is None:
            raise BadInput.at(name, "field required")
        alert[name] = dims.bands.band_of(value) if name == SEVERITY else str(_text(body, name))
    return alert


def parse_alert(obj: object, dims: Dimensions) -> dict[str, str]:
    """A gate question: exactly the configured dimensions; BadInput names the first wrong field."""
    return _dimensions(_check_object(obj, _names(dims.names)), dims)


def parse_decision(obj: object, dims: Dimensions) -> DecisionIn:
    """A validated decision; BadInput names the first wrong field."""
    required, allowed = _decision_fields(dims.names)
    body = _check_object(obj, allowed)
    for name in required:
        if body.get(name) is None:
            raise BadInput.at(name, "field required")
    alert = _dimensions(body, dims)
    verdict = _VERDICTS.get(body["verdict"]) if type(body["verdict"]) is str else None
    if verdict is None:
        raise BadInput.at("verdict", f"must be close or escalate, got {body['verdict']!r}")
    try:
        decided_at = parse_time(body["decided_at"])
    except ValueError as exc:
        raise BadInput.at("decided_at", str(exc)) from None
    confidence = body.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not math.isfinite(confidence)
        or not 0 <= confidence <= 1
    ):
        raise BadInput.at("confidence", "must be a number within [0, 1]")
    return DecisionIn(
        decision_id=str(_text(body, "decision_id")),
        alert_id=str(_text(body, "alert_id")),
        tenant=alert.get("tenant", ""),
        alert=alert,
        verdict=verdict,
        decided_at=decided_at,
        confidence=float(confidence) if confidence is not None else None,
        model_version=_text(body, "model_version", required=False),
        body=_canonical(body),
    )


def parse_outcome(obj: object) -> OutcomeIn:
    """A validated outcome, referring to a decision by decision_id or by tenant + alert_id."""
    body = _check_object(obj, _OUTCOME_FIELDS)
    decision_id = _text(body, "decision_id", required=False)
    tenant = _text(body, "tenant", required=False)
    alert_id = _text(body, "alert_id", required=False)
    if decision_id is None and (tenant is None or alert_id is None):
        raise BadInput.at("decision_id", "field required (or tenant and alert_id)")
    disposition = body.get("disposition")
    if disposition is None:
        raise BadInput.at("disposition", "field required")
    known = _DISPOSITIONS.get(disposition) if type(disposition) is str else None
    if known is None:
        names = ", ".join(d.value for d in Disposition)
        raise BadInput.at("disposition", f"must be one of {names}, got {disposition!r}")
    source = _text(body, "source")
    if body.get("observed_at") is None:
        raise BadInput.at("observed_at", "field required")
    try:
        observed_at = parse_time(body["observed_at"])
    except ValueError as exc:
        raise BadInput.at("observed_at", str(exc)) from None
    return OutcomeIn(
        disposition=known,
        source=str(source),
        observed_at=observed_at,
        decision_id=decision_id,
        tenant=tenant,
        alert_id=alert_id,
        reviewer=_text(body, "reviewer", required=False),
    )
