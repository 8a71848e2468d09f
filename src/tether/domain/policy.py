"""The rollout policy: thresholds and switches, validated as a whole, overridable per slice."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tether.domain.errors import BadInput


class EvidenceMethod(StrEnum):
    POINT = "point"
    SEQUENTIAL = "sequential"
    SPRT = "sprt"


class OnHold(StrEnum):
    KEEP = "keep"
    PAUSE = "pause"


class ReviewFrom(StrEnum):
    ALL = "all"  # every review outcome counts, whoever picked the alert
    SAMPLED = "sampled"  # only reviews of decisions Tether sampled count; others are shown apart


class ModelChange(StrEnum):
    RESTART = "restart"  # a new model_version on a live slice starts a new attempt in canary
    IGNORE = "ignore"


@dataclass(frozen=True)
class Policy:
    """Every field of DESIGN §5 with its default."""

    promote_after_days: float = 7
    promote_min_precision: float = 0.98
    rollback_below_precision: float = 0.95
    max_missed_tp: int = 0
    evidence: EvidenceMethod = EvidenceMethod.SEQUENTIAL
    min_reviews_to_promote: int = 30
    min_reviews_to_judge_rollback: int = 20
    alpha_promote: float = 0.05
    alpha_rollback: float = 0.05
    prior_a: float = 19
    prior_b: float = 1
    hold_after_days: float = 28
    monitor_active: bool = True
    on_hold: OnHold = OnHold.KEEP
    tenants_start_in_shadow: bool = True
    shadow_window_days: float = 14
    shadow_min_agreement: float = 0.95
    shadow_min_decisions: int = 50
    cooldown_hours: float = 24
    review_rate_canary: float = 0.25
    review_rate_active: float = 0.05
    review_from: ReviewFrom = ReviewFrom.ALL
    model_change: ModelChange = ModelChange.RESTART
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The policy as one flat JSON-ready object."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, StrEnum) else value
        return out

    def merged(self, overrides: Mapping[str, Any]) -> Policy:
        """This policy with a slice's overrides applied and the whole validated."""
        return policy_from({**self.to_dict(), **overrides})


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Policy)}
_FRACTIONS = (
    "promote_min_precision",
    "rollback_below_precision",
    "shadow_min_agreement",
    "review_rate_canary",
    "review_rate_active",
)
_ENUMS: dict[str, type[StrEnum]] = {
    "EvidenceMethod": EvidenceMethod,
    "OnHold": OnHold,
    "ReviewFrom": ReviewFrom,
    "ModelChange": ModelChange,
}
_ALPHAS = ("alpha_promote", "alpha_rollback")
_NON_NEGATIVE = (
    "promote_after_days",
    "max_missed_tp",
    "min_reviews_to_promote",
    "min_reviews_to_judge_rollback",
    "hold_after_days",
    "shadow_window_days",
    "shadow_min_decisions",
    "cooldown_hours",
)


def _coerce(name: str, value: Any) -> Any:
    """A field's value from JSON or from command-line text, or BadInput naming the field."""
    kind = Policy.__dataclass_fields__[name].type
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                return text.lower() in ("true", "1", "yes", "on")
            raise ValueError
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            number = float(text) if text is not None else value
            if not isinstance(number, int | float) or number != int(number):
                raise ValueError
            return int(number)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            number = float(text) if text is not None else float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        enum = _ENUMS[str(kind)]
        return enum(text if text is not None else value)
    except (ValueError, TypeError):
        expected = {"bool": "true or false", "int": "an integer", "float": "a number"}.get(str(kind))
        if expected is None:
            expected = "one of " + ", ".join(m.value for m in _ENUMS[str(kind)])
        raise BadInput.at(name, f"must be {expected}, got {value!r}") from None


def check_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce each named field; unknown names are bad input."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in FIELDS:
            raise BadInput.at(name, "unknown policy field")
        out[name] = _coerce(name, value)
    return out


def policy_from(values: Mapping[str, Any]) -> Policy:
    """A validated policy from (possibly partial) field values over the defaults."""
    policy = Policy(**check_fields(values))
    for name in _FRACTIONS:
        if not 0 <= getattr(policy, name) <= 1:
            raise BadInput.at(name, "must be within [0, 1]")
    for name in _ALPHAS:
        if not 0 < getattr(policy, name) < 1:
            raise BadInput.at(name, "must be within (0, 1)")
    for name in ("prior_a", "prior_b"):
        if getattr(policy, name) <= 0:
            raise BadInput.at(name, "must be > 0")
    for name in _NON_NEGATIVE:
        if getattr(policy, name) < 0:
            raise BadInput.at(name, "must be >= 0")
    if policy.rollback_below_precision > policy.promote_min_precision:
        raise BadInput.at("rollback_below_precision", "must be <= promote_min_precision")
    return policy


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """`field=value` strings from the command line, coerced; BadInput names the field."""
    raw: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BadInput.at("policy", f"{item!r} is not field=value")
        raw[name.strip()] = value
    return check_fields(raw)
