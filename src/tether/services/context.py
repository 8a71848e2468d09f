"""What every use case needs: the database, the clock, ids, dimensions and the gate's cached view."""

from __future__ import annotations

import dataclasses
import random
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tether.domain.access import ADMIN_CLI, Principal
from tether.domain.errors import NotInitialised
from tether.domain.gate import GateView
from tether.domain.model import Actor, ActorType
from tether.domain.policy import Policy, policy_from
from tether.domain.scope import Dimensions
from tether.store.engine import Database
from tether.store.sql import Tx


class Clock:
    """The system clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock(Clock):
    """Virtual time: a moment that only moves when told to."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment = self.moment + delta


@dataclass
class Ids:
    """New ids: random by default, reproducible from a seeded random.Random in the simulator."""

    rng: random.Random | None = None

    def new(self, prefix: str) -> str:
        token = f"{self.rng.getrandbits(48):012x}" if self.rng is not None else secrets.token_hex(6)
        return f"{prefix}_{token}"


class Observer:
    """Hooks for metrics; the default observes nothing (the API wires Prometheus in)."""

    def answered(self, mode: str, count: int = 1) -> None:
        """Gate answers given, by mode."""

    def gate_failed(self, reason: str) -> None:
        """The gate failed closed (stale view or internal error)."""


@dataclass
class GateCache:
    """The gate's in-memory view and when it was last known fresh."""

    view: GateView | None = None
    fresh_at: datetime | None = None
    # Kept fresh by a watcher thread (a server): the gate reads the database only after this process
    # itself changed the version (`bumps_seen` behind `Database.bumps`), so its own changes act at once.
    watched: bool = False
    bumps_seen: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Context:
    """The wiring every service function takes; built once by bootstrap.build."""

    db: Database
    clock: Clock
    dims: Dimensions
    actor: Actor
    ids: Ids = field(default_factory=Ids)
    gate: GateCache = field(default_factory=GateCache)
    max_staleness: timedelta = timedelta(seconds=5)
    principal: Principal = ADMIN_CLI  # who asks: the CLI acts with admin rights on every tenant
    observer: Observer = field(default_factory=Observer)
    session_secret: str = ""  # TETHER_SESSION_SECRET: dashboard cookies are keyed with it (web.session)
    # token hash -> (principal, monotonic time the database last confirmed it); see tokens.authenticate
    confirmed_tokens: dict[str, tuple[Principal, float]] = field(default_factory=dict)

    def as_user(self, name: str) -> Context:
        """The same wiring and rights, recorded in the audit trail as another person."""
        return dataclasses.replace(self, actor=Actor(ActorType.USER, name))

    def acting_as(self, principal: Principal) -> Context:
        """The same wiring, for one caller: its rights, its tenants, and its name in the audit trail."""
        return dataclasses.replace(self, actor=principal.actor, principal=principal)

    def require_initialised(self) -> None:
        if not self.db.initialised():
            raise NotInitialised("the database has no Tether schema: run `tether init` first")


def global_policy(tx: Tx) -> Policy:
    return policy_from(tx.policy_values())
