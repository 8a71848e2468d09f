"""The gate: which mode an alert gets, from a snapshot of slices and kill switches (DESIGN §3)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
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

    @cached_property
    def reason(self) -> str:
        """Its part of an answer's reason (worked out once per slice of a snapshot)."""
        if not self.id:
            return f"{self.scope} is in shadow (new tenant: no slice names it)"
        if self.state is SliceState.ROLLED_BACK:
            return f"{self.scope} was rolled back"
        return f"{self.scope} is in {self.state.value}"


Key = tuple[str | None, ...]  # one value per configured dimension, None where the scope leaves it open


@dataclass(frozen=True)
class _Masks:
    """For each subset of the dimensions (a bit mask), how to cut an alert's values down to that subset."""

    n: int
    masks: tuple[int, ...]  # every subset, global first
    pick: tuple[Callable[[tuple[str | None, ...]], Key], ...]
    # by mask: a set of masks as bits (bit o set for each strict superset o): refinement as one AND
    above: tuple[int, ...] = ()

    @classmethod
    def of(cls, n: int) -> _Masks:
        masks = tuple(sorted(range(2**n), key=lambda m: (bin(m).count("1"), m)))
        picks = []
        for m in masks:
            positions = [i if m >> i & 1 else n for i in range(n)]  # position n holds None
            picks.append(_picker(positions))
        above = tuple(sum(1 << o for o in range(2**n) if o != m and o & m == m) for m in range(2**n))
        return cls(n, masks, tuple(picks), above)


def _picker(positions: list[int]) -> Callable[[tuple[str | None, ...]], Key]:
    if len(positions) == 1:
        only = positions[0]
        return lambda values: (values[only],)
    return itemgetter(*positions)  # several positions: it returns the tuple itself


def key_of(scope: Scope, dims: Dimensions) -> Key:
    return tuple(scope.value(d) for d in dims.names)


@dataclass(frozen=True)
class GateView:
    """An immutable snapshot of slices and active kill switches, indexed for O(2^dims) dictionary lookups.

    An alert matches exactly the scopes that are subsets of its pairs; among matching scopes, A refines
    B exactly when A's set of dimensions is a strict superset of B's, so refinement is a bit-mask test.
    Only the dimension subsets some slice or kill switch uses are probed, each with one lookup. Answers
    are cached per distinct alert, and per set of deciding slices, for the life of the snapshot.
    """

    dims: Dimensions
    slices: Mapping[Key, GateSlice]
    kills: Mapping[Key, str]
    tenants_start_in_shadow: bool
    version: int = 0
    _masks: _Masks = field(default=_Masks(0, (), ()), compare=False, repr=False)
    _cache: dict[Key, Answer] = field(default_factory=dict, compare=False, repr=False)
    _values: Callable[[Mapping[str, str]], Key] = field(default=lambda a: (), compare=False, repr=False)
    # key -> (kill switch id or None, slice or None); the probes: (mask, picker) for the masks in use
    _index: dict[Key, tuple[str | None, GateSlice | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _probes: tuple[tuple[int, Callable[[Key], Key]], ...] = field(default=(), compare=False, repr=False)
    _decided: dict[tuple[Key, ...], Answer] = field(default_factory=dict, compare=False, repr=False)
    _kill_answers: dict[Key, Answer] = field(default_factory=dict, compare=False, repr=False)
    _tenant_at: int = field(default=-1, compare=False, repr=False)  # the tenant's position, -1: none

    def __post_init__(self) -> None:
        names = self.dims.names
        getter = itemgetter(*names)
        values = (lambda a: (getter(a),)) if len(names) == 1 else getter
        object.__setattr__(self, "_values", values)
        masks = _Masks.of(len(names))
        object.__setattr__(self, "_masks", masks)
        index: dict[Key, tuple[str | None, GateSlice | None]] = {k: (None, s) for k, s in self.slices.items()}
        for k, kill_id in self.kills.items():
            index[k] = (kill_id, index.get(k, (None, None))[1])
        used = {sum(1 << i for i, v in enumerate(k) if v is not None) for k in index}
        probes = tuple((m, pick) for m, pick in zip(masks.masks, masks.pick, strict=True) if m in used)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_probes", probes)
        object.__setattr__(self, "_tenant_at", names.index("tenant") if "tenant" in names else -1)

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
            if len(self._cache) < _CACHED:
                self._cache[key] = cached
        return cached

    def _resolve(self, values: Key) -> Answer:
        padded = (*values, None)
        index = self._index
        matching: list[tuple[int, Key, GateSlice | None]] = []
        if None in values:
            absent = sum(1 << i for i, v in enumerate(values) if v is None)
            probes = tuple(p for p in self._probes if not p[0] & absent)  # such scopes cannot match
        else:
            probes = self._probes
        for mask, pick in probes:
            hit = index.get(key := pick(padded))
            if hit is not None:
                if hit[0] is not None:
                    return self._killed(key, hit[0])
                matching.append((mask, key, hit[1]))
        self._guard(values, matching)
        if not matching:
            return _NO_SLICE
        if len(matching) == 1:
            remaining = [(matching[0][1], matching[0][2])]
        else:  # set aside each slice refined by another matching one (a strict superset of its dimensions)
            present = 0
            for m, _, _ in matching:
                present |= 1 << m
            above = self._masks.above
            remaining = [(k, s) for m, k, s in matching if not present & above[m]]
        deciding = tuple(k for k, _ in remaining)
        answer = self._decided.get(deciding)
        if answer is None:
            answer = _decide([s if s is not None else _guard_slice(self.dims, k) for k, s in remaining])
            if len(self._decided) < _CACHED:
                self._decided[deciding] = answer
        return answer

    def _killed(self, key: Key, kill_id: str) -> Answer:
        answer = self._kill_answers.get(key)
        if answer is None:
            where = Scope(tuple((d, v) for d, v in zip(self.dims.names, key, strict=True) if v is not None))
            answer = Answer(Mode.KILLED, False, (), f"kill switch {kill_id} on {where} is active", kill_id)
            self._kill_answers[key] = answer  # one per kill switch in the snapshot: bounded
        return answer

    def _guard(self, values: Key, matching: list[tuple[int, Key, GateSlice | None]]) -> None:
        """The tenant guard: a tenant with no slice of exactly `tenant=<it>` acts as if one were in shadow.

        The stand-in shadow slice is `None` with the tenant-only key; it is built only when an answer is.
        """
        position = self._tenant_at
        if position < 0 or not self.tenants_start_in_shadow:
            return
        tenant = values[position]
        if tenant is None:
            return
        mask = 1 << position
        for m, _, _ in matching:
            if m == mask:
                return
        key: list[str | None] = [None] * len(values)
        key[position] = tenant
        matching.append((mask, tuple(key), None))


_CACHED = 200_000  # answers kept per snapshot (per distinct alert, and per set of deciding slices)
_NO_SLICE = Answer(Mode.SHADOW, False, (), "no slice matches; shadow by default")


def _guard_slice(dims: Dimensions, key: Key) -> GateSlice:
    tenant = key[dims.names.index("tenant")]
    assert tenant is not None
    return GateSlice("", Scope((("tenant", tenant),)), SliceState.SHADOW, 0)


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
    return "; ".join(s.reason for s in deciding)


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
