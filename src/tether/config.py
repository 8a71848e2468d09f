"""Settings: the only module that reads the environment."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from datetime import datetime

from tether.domain.errors import BadInput
from tether.domain.scope import DEFAULT_DIMENSIONS, Dimensions, SeverityBands
from tether.domain.timefmt import parse_time

DEFAULT_DATABASE_URL = "sqlite:///./tether.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    now: datetime | None = None  # a fixed "now" (virtual time); None means the system clock
    actor: str = "operator"
    dimensions: Dimensions = field(default_factory=Dimensions)
    max_staleness_seconds: float = 5.0
    # SQLite durability: FULL (default) syncs every commit; the simulator's throwaway databases use NORMAL.
    sqlite_synchronous: str = "FULL"
    evaluate_every: float = 60.0  # seconds between the server's evaluation cycles (0: never)
    webhook_every: float = 1.0  # seconds between webhook delivery rounds (0: never)
    webhook_max_attempts: int = 8  # then a delivery is dead-lettered
    webhook_backoff_seconds: float = 1.0  # first retry delay, doubled at each attempt
    log_format: str = "text"  # text or json
    # Keys dashboard session cookies together with the token's stored hash: set it (the same on every
    # replica) so that someone who can only read the database cannot make a session cookie.
    session_secret: str = ""


def _dimensions(env: dict[str, str]) -> Dimensions:
    names = tuple(n.strip() for n in env.get("TETHER_DIMENSIONS", "").split(",") if n.strip())
    bands_text = env.get("TETHER_SEVERITY_BANDS", "").strip()
    bands = SeverityBands.default()
    if bands_text:
        pairs = []
        for part in bands_text.split(","):
            name, _, low = part.partition(":")
            try:
                pairs.append((name.strip(), float(low)))
            except ValueError:
                raise BadInput.at("TETHER_SEVERITY_BANDS", f"{part!r} is not name:lower_bound") from None
        bands = SeverityBands.from_bounds(pairs)
    return Dimensions(names or DEFAULT_DIMENSIONS, bands)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers; an actor still needs a name
        return "operator"


def from_env(db: str | None = None, actor: str | None = None, now: str | None = None) -> Settings:
    """Settings from flags first, then TETHER_* variables, then defaults."""
    env = dict(os.environ)
    now_text = now or env.get("TETHER_NOW")
    try:
        fixed_now = parse_time(now_text) if now_text else None
    except ValueError as exc:
        raise BadInput.at("now" if now else "TETHER_NOW", str(exc)) from None
    return Settings(
        database_url=db or env.get("TETHER_DATABASE_URL") or DEFAULT_DATABASE_URL,
        now=fixed_now,
        actor=actor or env.get("TETHER_ACTOR") or _login(),
        dimensions=_dimensions(env),
        max_staleness_seconds=_number(env, "TETHER_MAX_STALENESS", 5.0),
        evaluate_every=_number(env, "TETHER_EVALUATE_EVERY", 60.0),
        webhook_every=_number(env, "TETHER_WEBHOOK_EVERY", 1.0),
        webhook_max_attempts=int(_number(env, "TETHER_WEBHOOK_MAX_ATTEMPTS", 8)),
        webhook_backoff_seconds=_number(env, "TETHER_WEBHOOK_BACKOFF_SECONDS", 1.0),
        log_format=_choice(env, "TETHER_LOG_FORMAT", ("text", "json")),
        session_secret=env.get("TETHER_SESSION_SECRET", ""),
    )


def _number(env: dict[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise BadInput.at(name, f"must be a number, got {text!r}") from None
    if value < 0:
        raise BadInput.at(name, "must be >= 0")
    return value


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, allowed[0]).strip() or allowed[0]
    if value not in allowed:
        raise BadInput.at(name, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value
