"""The gate: which mode an alert gets, from a snapshot of slices and kill switches (DESIGN §3)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter

from tether.domain.model import AUTONOMY, Answer, KillSwitch, Mode, Slice, SliceState
from tether.domain.scope import Dimensions, Scope

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


Key = tuple[str | None, ...]  # one value per configured dimension, None where the scope leaves it open


@dataclass(frozen=True)
class _Masks:
    """For each subset of the dimensions (a bit mask), how to cut an alert's values down to that subset."""

    n: int
    masks: tuple[int, ...]  # every subset, global first
    pick: tuple[Callable[[tuple[str | None, ...]], Key], ...]

    @classmethod
    def of(cls, n: int) -> _Masks:
        masks = tuple(sorted(range(2**n), key=lambda m: (bin(m).count("1"), m)))
        picks = []
        for m in masks:
            positions = [i if m >> i & 1 else n for i in range(n)]  # position n holds None
            picks.append(_picker(positions))
        return cls(n, masks, tuple(picks))


def _picker(positions: list[int]) -> Callable[[tuple[str | None, ...]], Key]:
    if len(positions) == 1:
        only = positions[0]
        return lambda values: (values[only],)
    getter = itemgetter(*positions)
    return lambda values: getter(values)


def key_of(scope: Scope, dims: Dimensions) -> Key:
    return tuple(scope.value(d) for d in dims.names)


@dataclass(frozen=True)
class GateView:
    """An immutable snapshot of slices and active kill switches, indexed for O(2^dims) dictionary lookups.

    An alert matches exactly the scopes that are subsets of its pairs; among matching scopes, A refines
    B exactly when A's set of dimensions is a strict superset of B's, so refinement is a bit-mask test.
    Answers are cached per distinct alert for the life of the snapshot.
    """

    dims: Dimensions
    slices: Mapping[Key, GateSlice]
    kills: Mapping[Key, str]
    tenants_start_in_shadow: bool
    version: int = 0
    _masks: _Masks = field(default=_Masks(0, (), ()), compare=False, repr=False)
    _cache: dict[Key, Answer] = field(default_factory=dict, compare=False, repr=False)
    _values: Callable[[Mapping[str, str]], Key] = field(default=lambda a: (), compare=False, repr=False)

    def __post_init__(self) -> None:
        names = self.dims.names
        getter = itemgetter(*names)
        values = (lambda a: (getter(a),)) if len(names) == 1 else getter
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_masks", _Masks.of(len(names)))

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
            key_of(s.scope, dims): s
            if isinstance(s, GateSlice)
            else GateSlice(s.id, s.scope, s.state, s.attempt)
            for s in slices
        }
        kills: dict[Key, str] = {}
        for k in sorted((k for k in kill_switches if k.active), key=lambda k: (k.activated_at, k.id)):
            kills.setdefault(key_of(k.scope, dims), k.id)
        return cls(dims, index, kills, tenants_start_in_shadow, version)

    def answer(self, alert: Mapping[str, str]) -> Answer:
        """The mode for a read-only question (no verdict): would a close be executed?"""
        try:
            key = self._values(alert)
        except KeyError:  # a dimension missing: no scope on it can match
            key = tuple(alert.get(d) for d in self.dims.names)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._resolve(key)
            if len(self._cache) < 200_000:
                self._cache[key] = cached
        return cached

    def _resolve(self, values: Key) -> Answer:
        masks = self._masks
        padded = (*values, None)
        absent = sum(1 << i for i, v in enumerate(values) if v is None)
        matching: list[tuple[int, GateSlice]] = []
        for mask, pick in zip(masks.masks, masks.pick, strict=True):
            if mask & absent:
                continue  # a scope on a dimension the alert lacks cannot match
            key = pick(padded)
            kill_id = self.kills.get(key)
            if kill_id is not None:
                where = Scope(
                    tuple((d, v) for d, v in zip(self.dims.names, key, strict=True) if v is not None)
                )
                return Answer(Mode.KILLED, False, (), f"kill switch {kill_id} on {where} is active", kill_id)
            found = self.slices.get(key)
            if found is not None:
                matching.append((mask, found))
        self._guard(values, matching)
        if not matching:
            return Answer(Mode.SHADOW, False, (), "no slice matches; shadow by default")
        # Set aside each slice refined by another matching one (a strict superset of its dimensions).
        remaining = [s for m, s in matching if not any(o != m and o & m == m for o, _ in matching)]
        return _decide(remaining)

    def _guard(self, values: Key, matching: list[tuple[int, GateSlice]]) -> None:
        """The tenant guard: a tenant with no slice of exactly `tenant=<it>` acts as if one were in shadow."""
        names = self.dims.names
        if not self.tenants_start_in_shadow or "tenant" not in names:
            return
        position = names.index("tenant")
        tenant = values[position]
        if tenant is None:
            return
        mask = 1 << position
        if not any(m == mask for m, _ in matching):
            matching.append((mask, GateSlice("", Scope((("tenant", tenant),)), SliceState.SHADOW, 0)))


def _decide(remaining: list[GateSlice]) -> Answer:
    """Least autonomy among the remaining slices; autonomy is granted by all of them or none."""
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
