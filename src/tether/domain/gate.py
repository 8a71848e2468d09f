"""The gate: which mode an alert gets, from a snapshot of slices and kill switches (DESIGN §3)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tether.domain.model import AUTONOMY, Answer, KillSwitch, Mode, Slice, SliceState
from tether.domain.scope import Dimensions, Pair, Scope, sub_scopes

_MODE_OF = {
    SliceState.SHADOW: Mode.SHADOW,
    SliceState.ROLLED_BACK: Mode.SHADOW,
    SliceState.CANARY: Mode.CANARY,
    SliceState.ACTIVE: Mode.ACTIVE,
}


@dataclass(frozen=True)
class GateSlice:
    """What the gate needs of a slice."""

    id: str
    scope: Scope
    state: SliceState
    attempt: int
    review_rate: float = 0.0  # share of its executed closes to sample for review, by its state and policy


@dataclass(frozen=True)
class GateView:
    """An immutable snapshot of slices and active kill switches, indexed by scope for O(2^dims) answers."""

    dims: Dimensions
    slices: Mapping[tuple[Pair, ...], GateSlice]
    kills: Mapping[tuple[Pair, ...], str]
    tenants_start_in_shadow: bool
    version: int = 0
    _cache: dict[tuple[str, ...], Answer] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        dims: Dimensions,
        slices: Iterable[Slice | GateSlice],
        kill_switches: Iterable[KillSwitch],
        *,
        tenants_start_in_shadow: bool = True,
        version: int = 0,
    ) -> GateView:
        index = {
            s.scope.pairs: s if isinstance(s, GateSlice) else GateSlice(s.id, s.scope, s.state, s.attempt)
            for s in slices
        }
        kills: dict[tuple[Pair, ...], str] = {}
        for k in sorted((k for k in kill_switches if k.active), key=lambda k: (k.activated_at, k.id)):
            kills.setdefault(k.scope.pairs, k.id)
        return cls(dims, index, kills, tenants_start_in_shadow, version)

    def answer(self, alert: Mapping[str, str]) -> Answer:
        """The mode for a read-only question (no verdict): would a close be executed?"""
        key = tuple(alert.get(d, "") for d in self.dims.names)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._resolve(alert)
            if len(self._cache) < 200_000:
                self._cache[key] = cached
        return cached

    def _resolve(self, alert: Mapping[str, str]) -> Answer:
        scopes = list(sub_scopes(alert, self.dims))
        for scope in scopes:
            kill_id = self.kills.get(scope.pairs)
            if kill_id is not None:
                return Answer(Mode.KILLED, False, (), f"kill switch {kill_id} on {scope} is active", kill_id)
        matching = [s for scope in scopes if (s := self.slices.get(scope.pairs)) is not None]
        tenant = alert.get("tenant")
        if self.tenants_start_in_shadow and tenant is not None and (("tenant", tenant),) not in self.slices:
            guard = GateSlice("", Scope((("tenant", tenant),)), SliceState.SHADOW, 0)
            matching.append(guard)
        if not matching:
            return Answer(Mode.SHADOW, False, (), "no slice matches; shadow by default")
        remaining = [s for s in matching if not any(o.scope.refines(s.scope) for o in matching)]
        least = min(AUTONOMY[s.state] for s in remaining)
        deciding = [s for s in remaining if AUTONOMY[s.state] == least]
        mode = _MODE_OF[deciding[0].state]
        if mode is Mode.SHADOW:
            return Answer(mode, False, tuple(s.id for s in deciding if s.id), _reason(deciding))
        # Autonomy granted: every remaining slice allowed it, and each gets the decision as evidence.
        return Answer(
            mode,
            True,
            tuple(s.id for s in remaining),
            _reason(deciding),
            granted=tuple((s.id, s.attempt) for s in remaining),
            review_rate=max(s.review_rate for s in remaining),
        )


def sampled_for_review(decision_id: str, rate: float) -> bool:
    """A deterministic sample: the same decision id is always in or out, so a replay answers the same."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(decision_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _reason(deciding: list[GateSlice]) -> str:
    parts = []
    for s in deciding:
        if not s.id:
            parts.append(f"{s.scope} is in shadow (new tenant: no slice names it)")
        elif s.state is SliceState.ROLLED_BACK:
            parts.append(f"{s.scope} was rolled back")
        else:
            parts.append(f"{s.scope} is in {s.state.value}")
    return "; ".join(parts)


STALE = Answer(Mode.SHADOW, False, (), "stale")
ERROR = Answer(Mode.SHADOW, False, (), "error")


def safe_answer(
    view: GateView | None,
    alert: Mapping[str, str],
    *,
    fresh_at: datetime | None,
    now: datetime,
    max_staleness: timedelta,
) -> Answer:
    """The gate's answer, failing closed: a view older than max_staleness, or any error, answers shadow."""
    try:
        if view is None or fresh_at is None or now - fresh_at > max_staleness:
            return STALE
        return view.answer(alert)
    except Exception:  # the gate never raises to its caller: any doubt means no autonomy
        return ERROR
