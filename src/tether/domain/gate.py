"""The gate: which mode an alert gets, from a snapshot of slices and kill switches (DESIGN §3)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from operator import itemgetter
from typing import ClassVar

from tether.domain.frozen import quick_init
from tether.domain.model import AUTONOMY, Answer, KillSwitch, Mode, Slice, SliceState
from tether.domain.scope import Dimensions, Scope

_MODE_OF = {
    SliceState.SHADOW: Mode.SHADOW,
    SliceState.ROLLED_BACK: Mode.SHADOW,
    SliceState.CANARY: Mode.CANARY,
    SliceState.ACTIVE: Mode.ACTIVE,
}


@quick_init
@dataclass(frozen=True)
class GateSlice:
    """What the gate needs of a slice."""

    id: str
    scope: Scope
    state: SliceState
    attempt: int
    review_rate: float = 0.0  # share of its executed closes to sample for review, by its state and policy
    # Its autonomy as a plain number, read on every answer it takes part in; set on each instance by
    # __post_init__ (ClassVar keeps it out of the fields, so it is neither compared nor a parameter).
    # -1 for a state the gate does not know: answering with it raises, and the caller fails closed.
    level: ClassVar[int]

    def __post_init__(self) -> None:
        self.__dict__["level"] = AUTONOMY.get(self.state, -1)

    @cached_property
    def reason(self) -> str:
        """Its part of an answer's reason (worked out once per slice of a snapshot)."""
        if not self.id:
            return f"{self.scope} is in shadow (new tenant: no slice names it)"
        if self.state is SliceState.ROLLED_BACK:
            return f"{self.scope} was rolled back"
        return f"{self.scope} is in {self.state.value}"

    @cached_property
    def alone(self) -> Answer:
        """The answer when this slice alone decides (worked out once per slice of a snapshot)."""
        return _decide([self])


Key = tuple[str | None, ...]  # one value per configured dimension, None where the scope leaves it open
_Probe = tuple[int, int, Callable[[Key], Key]]  # (rank: broadest first, mask, picker)
_Match = tuple[int, int, Key, "GateSlice"]  # a matching slice: (rank, mask, key, slice)
_Matched = tuple[tuple[int, Key, str] | None, tuple[_Match, ...]]  # the first kill (rank, key, id), or slices
_first = itemgetter(0)


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
    Only the dimension subsets some slice or kill switch uses are probed, each with one lookup. Scopes
    that name a tenant are probed only on the subsets that tenant's scopes use; the scopes that name none
    match by the alert's other values alone, which repeat across tenants, so their part is cached apart.
    Answers are cached per distinct alert, and per set of deciding slices, for the life of the snapshot.
    """

    dims: Dimensions
    slices: Mapping[Key, GateSlice]
    kills: Mapping[Key, str]
    tenants_start_in_shadow: bool
    version: int = 0
    _masks: _Masks = field(default=_Masks(0, (), ()), compare=False, repr=False)
    _cache: dict[Key, Answer] = field(default_factory=dict, compare=False, repr=False)
    _values: Callable[[Mapping[str, str]], Key] = field(default=lambda a: (), compare=False, repr=False)
    # key -> (kill switch id or None, slice or None)
    _index: dict[Key, tuple[str | None, GateSlice | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # the probes of the masks in use, in order (broadest first): all of them, those naming no tenant,
    # and by tenant those its scopes use
    _probes: tuple[_Probe, ...] = field(default=(), compare=False, repr=False)
    _rest_probes: tuple[_Probe, ...] = field(default=(), compare=False, repr=False)
    _tenant_probes: dict[str, tuple[_Probe, ...]] = field(default_factory=dict, compare=False, repr=False)
    _rest: dict[Key, _Matched] = field(default_factory=dict, compare=False, repr=False)
    _decided: dict[tuple[Key, ...], Answer] = field(default_factory=dict, compare=False, repr=False)
    _kill_answers: dict[Key, Answer] = field(default_factory=dict, compare=False, repr=False)
    _guards: dict[str, _Match] = field(default_factory=dict, compare=False, repr=False)
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
        tenant_at = names.index("tenant") if "tenant" in names else -1
        by_mask = {
            m: (rank, m, pick) for rank, (m, pick) in enumerate(zip(masks.masks, masks.pick, strict=True))
        }
        used: set[int] = set()
        by_tenant: dict[str, set[int]] = {}
        for k in index:
            mask = sum(1 << i for i, v in enumerate(k) if v is not None)
            used.add(mask)
            if tenant_at >= 0 and (tenant := k[tenant_at]) is not None:
                by_tenant.setdefault(tenant, set()).add(mask)
        probes = tuple(by_mask[m] for m in masks.masks if m in used)
        shared: dict[frozenset[int], tuple[_Probe, ...]] = {}  # few distinct sets: one tuple for each
        tenant_probes = {
            tenant: shared.setdefault(frozenset(ms), tuple(p for p in probes if p[1] in ms))
            for tenant, ms in by_tenant.items()
        }
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_probes", probes)
        object.__setattr__(self, "_rest_probes", tuple(p for p in probes if not p[1] >> tenant_at & 1))
        object.__setattr__(self, "_tenant_probes", tenant_probes)
        object.__setattr__(self, "_tenant_at", tenant_at)

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

    def _match(self, values: Key, probes: tuple[_Probe, ...]) -> _Matched:
        """The first (broadest) matching kill switch, or else every matching slice, among these probes."""
        padded = (*values, None)
        if None in values:
            absent = sum(1 << i for i, v in enumerate(values) if v is None)
            probes = tuple(p for p in probes if not p[1] & absent)  # such scopes cannot match
        index = self._index
        matching: list[tuple[int, int, Key, GateSlice]] = []
        for rank, mask, pick in probes:
            hit = index.get(key := pick(padded))
            if hit is not None:
                if hit[0] is not None:
                    return (rank, key, hit[0]), ()
                slice_ = hit[1]
                assert slice_ is not None
                matching.append((rank, mask, key, slice_))
        return None, tuple(matching)

    def _resolve(self, values: Key) -> Answer:
        at = self._tenant_at
        tenant = values[at] if at >= 0 else None
        kill, found = self._found(values, tenant)
        if kill is not None:
            return self._killed(kill[1], kill[2])
        matching = self._guard(tenant, found) if tenant is not None else found
        if not matching:
            return _NO_SLICE
        if len(matching) == 1:
            return matching[0][3].alone
        # set aside each slice refined by another matching one (a strict superset of its dimensions)
        present = 0
        for _, m, _, _ in matching:
            present |= 1 << m
        above = self._masks.above
        remaining: list[GateSlice] = []
        keys: list[Key] = []
        for _, m, k, s in matching:
            if not present & above[m]:
                remaining.append(s)
                keys.append(k)
        if len(remaining) == 1:
            return remaining[0].alone
        deciding = tuple(keys)
        answer = self._decided.get(deciding)
        if answer is None:
            answer = _decide(remaining)
            if len(self._decided) < _CACHED:
                self._decided[deciding] = answer
        return answer

    def _found(self, values: Key, tenant: str | None) -> _Matched:
        """Every matching slice in probe order, or the first matching kill switch."""
        if tenant is None:
            return self._match(values, self._probes)
        # the scopes naming no tenant, by the other values (cached); then this tenant's own
        at = self._tenant_at
        rest_key = (*values[:at], None, *values[at + 1 :])
        rest = self._rest.get(rest_key)
        if rest is None:
            rest = self._match(rest_key, self._rest_probes)
            if len(self._rest) < _CACHED:
                self._rest[rest_key] = rest
        own = self._tenant_probes.get(tenant)
        kill, found = self._match(values, own) if own else (None, ())
        if rest[0] is not None and (kill is None or rest[0][0] < kill[0]):
            kill = rest[0]
        if rest[1]:  # both parts in probe order, as one probe of all would find them
            found = tuple(sorted(rest[1] + found, key=_first)) if found else rest[1]
        return kill, found

    def _killed(self, key: Key, kill_id: str) -> Answer:
        answer = self._kill_answers.get(key)
        if answer is None:
            where = Scope(tuple((d, v) for d, v in zip(self.dims.names, key, strict=True) if v is not None))
            answer = Answer(Mode.KILLED, False, (), f"kill switch {kill_id} on {where} is active", kill_id)
            self._kill_answers[key] = answer  # one per kill switch in the snapshot: bounded
        return answer

    def _guard(self, tenant: str, matching: tuple[_Match, ...]) -> tuple[_Match, ...]:
        """The tenant guard: a tenant with no slice of exactly `tenant=<it>` acts as if one were in shadow.

        The stand-in is a shadow slice with no id, one per tenant (made when an answer first needs it).
        """
        if not self.tenants_start_in_shadow:
            return matching
        mask = 1 << self._tenant_at
        for _, m, _, _ in matching:
            if m == mask:
                return matching
        guard = self._guards.get(tenant)
        if guard is None:
            key: list[str | None] = [None] * len(self.dims.names)
            key[self._tenant_at] = tenant
            stand_in = GateSlice("", Scope((("tenant", tenant),)), SliceState.SHADOW, 0)
            guard = (-1, mask, tuple(key), stand_in)  # after every slice found (its rank is not used)
            if len(self._guards) < _CACHED:
                self._guards[tenant] = guard
        return (*matching, guard)


_ABOVE_ALL = max(AUTONOMY.values()) + 1
_CACHED = 200_000  # answers kept per snapshot (per distinct alert, and per set of deciding slices)
_NO_SLICE = Answer(Mode.SHADOW, False, (), "no slice matches; shadow by default")


def _decide(remaining: list[GateSlice]) -> Answer:
    """Least autonomy among the remaining slices; autonomy is granted by all of them or none.

    Plain loops, not comprehensions: this runs once per new set of deciding slices, and on this Python
    each comprehension costs a function call.
    """
    least = _ABOVE_ALL
    for s in remaining:
        if s.level < least:
            least = s.level
    if least < 0:
        raise KeyError(f"unknown slice state in {[s.state for s in remaining if s.level < 0]}")
    ids: list[str] = []
    reasons: list[str] = []
    if not least:  # shadow (or rolled back): no autonomy; the slices holding it back decide
        for s in remaining:
            if not s.level:
                if s.id:
                    ids.append(s.id)
                reasons.append(s.reason)
        return Answer(Mode.SHADOW, False, tuple(ids), "; ".join(reasons))
    # Autonomy granted: every remaining slice allowed it, and each gets the decision as evidence.
    granted: list[tuple[str, int]] = []
    rate = 0.0
    mode = Mode.SHADOW
    for s in remaining:
        ids.append(s.id)
        granted.append((s.id, s.attempt))
        if s.review_rate > rate:
            rate = s.review_rate
        if s.level == least:
            reasons.append(s.reason)
            mode = _MODE_OF[s.state]
    return Answer(mode, True, tuple(ids), "; ".join(reasons), None, tuple(granted), False, rate)


def sampled_for_review(decision_id: str, rate: float) -> bool:
    """A deterministic sample: the same decision id is always in or out, so a replay answers the same."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(decision_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


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
