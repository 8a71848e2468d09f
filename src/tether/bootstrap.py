"""build(settings) -> Context: the one place that wires concrete classes together."""

from __future__ import annotations

import random
from datetime import timedelta

from tether.config import Settings
from tether.domain.model import Actor, ActorType
from tether.services.context import Clock, Context, FixedClock, Ids
from tether.store.engine import Database


def build(settings: Settings, *, clock: Clock | None = None, rng: random.Random | None = None) -> Context:
    """Wire a database, a clock (fixed when settings.now is set) and ids into a service context."""
    if clock is None:
        clock = FixedClock(settings.now) if settings.now is not None else Clock()
    return Context(
        db=Database(settings.database_url, settings.sqlite_synchronous),
        clock=clock,
        dims=settings.dimensions,
        actor=Actor(ActorType.USER, settings.actor),
        ids=Ids(rng),
        max_staleness=timedelta(seconds=settings.max_staleness_seconds),
        session_secret=settings.session_secret,
    )
