"""Validation of decisions as sent: the stored body is canonical JSON, and every refusal names its field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.domain.errors import BadInput
from tether.domain.inputs import parse_decision, parse_outcome
from tether.domain.model import Disposition, Verdict
from tether.domain.scope import Dimensions

DIMS = Dimensions()
BASE: dict[str, Any] = {
    "decision_id": "d-1",
    "alert_id": "A-1",
    "tenant": "acme",
    "severity": "high",
    "rule_family": "phishing",
    "data_source": "o365",
    "verdict": "close",
    "decided_at": "2026-03-02T10:00:00Z",
}

texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1).filter(
    lambda s: s.strip() != ""
)


@given(
    decision_id=texts,
    alert_id=texts,
    tenant=texts,
    severity=st.one_of(
        st.integers(0, 100), st.floats(0, 100), st.sampled_from(["low", "critical", " high "])
    ),
    confidence=st.one_of(st.none(), st.floats(0, 1), st.integers(0, 1)),
    model_version=st.one_of(st.none(), texts),
)
def test_the_stored_body_is_the_canonical_json_of_what_was_sent(
    decision_id: str, alert_id: str, tenant: str, severity: Any, confidence: Any, model_version: Any
) -> None:
    """Sorted keys, no spaces, text as is (quotes, escapes, any script): the text replays are compared by."""
    body = {**BASE, "decision_id": decision_id, "alert_id": alert_id, "tenant": tenant, "severity": severity}
    if confidence is not None:
        body["confidence"] = confidence
    if model_version is not None:
        body["model_version"] = model_version
    parsed = parse_decision(dict(reversed(list(body.items()))), DIMS)
    assert parsed.body == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert (parsed.decision_id, parsed.alert_id, parsed.tenant) == (decision_id, alert_id, tenant)
    assert parsed.verdict is Verdict.CLOSE


def test_text_with_spaces_around_it_is_kept_as_sent() -> None:
    """Leading or trailing spaces are part of an id, not an error; only blank text is refused."""
    parsed = parse_decision({**BASE, "decision_id": " d-1 ", "tenant": " acme"}, DIMS)
    assert (parsed.decision_id, parsed.tenant, parsed.alert["tenant"]) == (" d-1 ", " acme", " acme")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("decision_id", "   ", "must be a non-empty string"),
        ("alert_id", "", "must be a non-empty string"),
        ("tenant", 7, "must be a non-empty string"),
        ("rule_family", "a\x00b", "NUL"),
        ("alert_id", "a\ud800", "lone surrogate"),
        ("tenant", "é\udfff", "lone surrogate"),
        ("model_version", "\t", "must be a non-empty string"),
        ("verdict", "CLOSE", "must be close or escalate"),
        ("verdict", ["close"], "must be close or escalate"),
        ("decided_at", "2026-03-02T10:00:00", "RFC 3339"),
        ("confidence", True, "within [0, 1]"),
        ("severity", "urgent", "unknown severity"),
        ("colour", "red", "unknown field"),
    ],
)
def test_a_bad_field_is_refused_by_name(field: str, value: Any, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_decision({**BASE, field: value}, DIMS)
    assert caught.value.problems[0].field() == field
    assert message in str(caught.value)


def test_an_outcome_disposition_is_checked_by_name() -> None:
    ok = {
        "decision_id": "d-1",
        "disposition": "false_positive",
        "source": "review",
        "observed_at": BASE["decided_at"],
    }
    assert parse_outcome(ok).disposition is Disposition.FALSE_POSITIVE
    for wrong in ("FALSE_POSITIVE", 3, None):
        with pytest.raises(BadInput) as caught:
            parse_outcome({**ok, "disposition": wrong})
        assert caught.value.problems[0].field() == "disposition"
