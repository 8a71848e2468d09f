"""The domain's values: slices, kill switches, evidence counters, decisions, outcomes and answers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tether.domain.errors import NotAllowed
from tether.domain.frozen import quick_init
from tether.domain.scope import Scope
from tether.stats.sequential import EProcess


class SliceState(StrEnum):
    SHADOW = "shadow"
    CANARY = "canary"
    ACTIVE = "active"
    ROLLED_BACK = "rolled_back"


class Mode(StrEnum):
    KILLED = "killed"
    SHADOW = "shadow"
    CANARY = "canary"
    ACTIVE = "active"


# Least autonomous first; shadow and rolled_back rank alike.
AUTONOMY: dict[SliceState, int] = {
    SliceState.SHADOW: 0,
    SliceState.ROLLED_BACK: 0,
    SliceState.CANARY: 1,
    SliceState.ACTIVE: 2,
}
LIVE_STATES = (SliceState.CANARY, SliceState.ACTIVE)


class Verdict(StrEnum):
    CLOSE = "close"
    ESCALATE = "escalate"


class Disposition(StrEnum):
    FALSE_POSITIVE = "false_positive"
    BENIGN_POSITIVE = "benign_positive"
    TRUE_POSITIVE = "true_positive"
    UNDETERMINED = "undetermined"


class ActorType(StrEnum):
    SYSTEM = "system"
    USER = "user"
    TOKEN = "token"


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type.value, "id": self.id}
        if self.name is not None:
            out["name"] = self.name
        return out


SYSTEM = Actor(ActorType.SYSTEM, "tether")


@quick_init
@dataclass(frozen=True)
class Counters:
    """Evidence of a slice's current attempt, kept as a cache of decisions and outcomes."""

    decisions: int = 0
    executed: int = 0
    missed_tp: int = 0
    reviews: EProcess = field(default_factory=EProcess)
    other_reviews: int = 0  # reviews of unsampled decisions, shown apart under review_from=sampled


@dataclass(frozen=True)
class Slice:
    id: str
    scope: Scope
    state: SliceState
    attempt: int
    created_at: datetime
    canary_started_at: datetime | None = None
    promoted_at: datetime | None = None
    rolled_back_at: datetime | None = None
    held_at: datetime | None = None
    kill_switch_id: str | None = None
    policy_overrides: dict[str, Any] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    model_version: str | None = None
    would_promote_at: datetime | None = None
    would_roll_back_at: datetime | None = None

    def with_counters(self, counters: Counters) -> Slice:
        """The same slice with other counters: `dataclasses.replace` without its per-call introspection
        (outcome ingestion does this once per outcome)."""
        copy = object.__new__(Slice)
        copy.__dict__.update(self.__dict__, counters=counters)
        return copy


class Transition(StrEnum):
    START_CANARY = "start_canary"
    PROMOTE = "promote"
    ROLL_BACK = "roll_back"
    RESET = "reset"


# The state machine of DESIGN §2: which states each transition leaves from, and what it says otherwise.
TRANSITIONS: dict[Transition, tuple[tuple[SliceState, ...], str]] = {
    Transition.START_CANARY: ((SliceState.SHADOW,), "a canary starts from shadow"),
    Transition.PROMOTE: ((SliceState.CANARY,), "only a canary can be promoted"),
    Transition.ROLL_BACK: (
        (SliceState.CANARY, SliceState.ACTIVE),
        "only a canary or active slice rolls back",
    ),
    Transition.RESET: ((SliceState.ROLLED_BACK,), "only a rolled-back slice can be reset"),
}


def require_transition(s: Slice, transition: Transition) -> None:
    """NotAllowed unless the slice's state allows the transition."""
    allowed, rule = TRANSITIONS[transition]
    if s.state not in allowed:
        raise NotAllowed(f"slice {s.id} is {s.state.value}: {rule}")


def new_attempt(s: Slice, now: datetime, model_version: str | None = None) -> Slice:
    """The slice in canary on a fresh attempt: evidence from zero, promotion and notes cleared."""
    return dataclasses.replace(
        s,
        state=SliceState.CANARY,
        attempt=s.attempt + 1,
        canary_started_at=now,
        promoted_at=None,
        held_at=None,
        would_promote_at=None,
        would_roll_back_at=None,
        model_version=model_version,
        counters=Counters(),
    )


@dataclass(frozen=True)
class KillSwitch:
    id: str
    scope: Scope
    reason: str
    active: bool
    activated_by: Actor
    activated_at: datetime
    deactivated_by: Actor | None = None
    deactivated_at: datetime | None = None
    slice_id: str | None = None


@quick_init
@dataclass(frozen=True)
class Answer:
    """The gate's answer for one alert."""

    mode: Mode
    execute: bool
    slice_ids: tuple[str, ...]
    reason: str
    kill_switch_id: str | None = None
    # (slice id, attempt) of the slices that granted autonomy: where the decision counts as evidence.
    granted: tuple[tuple[str, int], ...] = ()
    review: bool = False  # an executed close sampled for an analyst's review (DESIGN §9)
    review_rate: float = 0.0  # the sampling rate the granting slices ask for

    def for_verdict(self, verdict: Verdict) -> Answer:
        """The answer for a decision: only a close is ever executed."""
        execute = self.execute and verdict is Verdict.CLOSE
        if execute == self.execute:
            return self
        return dataclasses.replace(self, execute=execute)


@quick_init
@dataclass(frozen=True)
class DecisionIn:
    """A decision as the orchestrator sent it, validated."""

    decision_id: str
    alert_id: str
    tenant: str
    alert: dict[str, str]  # dimension -> value, severity as its band
    verdict: Verdict
    decided_at: datetime
    confidence: float | None
    model_version: str | None
    body: str  # canonical JSON of what was sent: the idempotency fingerprint


@quick_init
@dataclass(frozen=True)
class OutcomeIn:
    """An outcome as the review tooling sent it, validated; refers to a decision one of two ways."""

    disposition: Disposition
    source: str
    observed_at: datetime
    decision_id: str | None = None
    tenant: str | None = None
    alert_id: str | None = None
    reviewer: str | None = None
