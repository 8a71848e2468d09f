"""Dimensions, severity bands and scopes: which alerts a slice or a kill switch covers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from tether.domain.errors import BadInput, refuse_unstorable

DEFAULT_DIMENSIONS: tuple[str, ...] = ("tenant", "severity", "rule_family", "data_source")
SEVERITY = "severity"


@dataclass(frozen=True)
class Band:
    """A severity band: a name and the half-open range [low, high) of raw scores it covers."""

    name: str
    low: float
    high: float


@dataclass(frozen=True)
class SeverityBands:
    """Maps raw severity (a word or a number 0–100) to a band name."""

    bands: tuple[Band, ...]
    words: Mapping[str, str]

    @classmethod
    def default(cls) -> SeverityBands:
        return cls.from_bounds([("low", 0), ("medium", 40), ("high", 70), ("critical", 90)])

    @classmethod
    def from_bounds(cls, bounds: list[tuple[str, float]]) -> SeverityBands:
        """Bands from (name, lower bound) pairs in increasing order; the last one includes 100."""
        if not bounds or bounds[0][1] != 0:
            raise BadInput.at("severity_bands", "the first band must start at 0")
        lows = [b for _, b in bounds]
        if lows != sorted(lows) or len(set(lows)) != len(lows):
            raise BadInput.at("severity_bands", "lower bounds must increase strictly")
        highs = [*lows[1:], math.inf]
        bands = tuple(Band(n, lo, hi) for (n, lo), hi in zip(bounds, highs, strict=True))
        words = {b.name: b.name for b in bands}
        if "low" in words:
            words.setdefault("info", "low")
        return cls(bands, words)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    def band_of(self, raw: object) -> str:
        """The band of a raw severity; BadInput names the problem."""
        if isinstance(raw, bool):
            raise BadInput.at(SEVERITY, "must be a word or a number 0-100")
        if isinstance(raw, str):
            word = raw.strip()
            if word in self.words:
                return self.words[word]
            try:
                raw = float(word)
            except ValueError:
                known = ", ".join(sorted(self.words))
                raise BadInput.at(SEVERITY, f"unknown severity {word!r} (one of {known}, or 0-100)") from None
        if not isinstance(raw, int | float) or not math.isfinite(raw) or not 0 <= raw <= 100:
            raise BadInput.at(SEVERITY, f"must be a word or a number 0-100, got {raw!r}")
        for band in self.bands:
            if band.low <= raw < band.high:
                return band.name
        return self.bands[-1].name


@dataclass(frozen=True)
class Dimensions:
    """The configured dimensions, in canonical order, and the severity bands."""

    names: tuple[str, ...] = DEFAULT_DIMENSIONS
    bands: SeverityBands = field(default_factory=SeverityBands.default)

    def position(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise BadInput.at(
                "scope", f"unknown dimension {name!r} (one of {', '.join(self.names)})"
            ) from None


Pair = tuple[str, str]


@dataclass(frozen=True)
class Scope:
    """A conjunction of dimension=value pairs in canonical order; the empty scope is global."""

    pairs: tuple[Pair, ...] = ()

    @property
    def text(self) -> str:
        return ",".join(f"{d}={v}" for d, v in self.pairs)

    def __str__(self) -> str:
        return self.text or "(global)"

    def value(self, dimension: str) -> str | None:
        for d, v in self.pairs:
            if d == dimension:
                return v
        return None

    def matches(self, alert: Mapping[str, str]) -> bool:
        """True when the alert has every pair of the scope."""
        return all(alert.get(d) == v for d, v in self.pairs)

    def refines(self, other: Scope) -> bool:
        """True when this scope's pairs are a strict superset of the other's."""
        mine = set(self.pairs)
        theirs = set(other.pairs)
        return theirs < mine


def parse_scope(text: str, dims: Dimensions) -> Scope:
    """Parse `dim=value,dim=value` into a canonical scope; BadInput names what is wrong."""
    refuse_unstorable(scope=text)
    text = text.strip()
    if not text:
        return Scope()
    seen: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not sep:
            raise BadInput.at("scope", f"{part.strip()!r} is not dimension=value")
        dims.position(name)
        if not value:
            raise BadInput.at("scope", f"empty value for {name}")
        if name in seen:
            raise BadInput.at("scope", f"dimension {name} given twice")
        if name == SEVERITY and value not in dims.bands.names:
            names = ", ".join(dims.bands.names)
            raise BadInput.at("scope", f"severity takes a band name ({names}), got {value!r}")
        seen[name] = value
    return scope_of(seen, dims)


def scope_of(pairs: Mapping[str, str], dims: Dimensions) -> Scope:
    """A canonical scope from a mapping whose keys are known dimensions."""
    return Scope(tuple((d, pairs[d]) for d in dims.names if d in pairs))
