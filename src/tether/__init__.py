"""Tether: progressive autonomy for AI triage agents (shadow → canary → active).

The library API: build a context from settings, then call the use cases in `tether.services`.
"""

from tether.bootstrap import build
from tether.config import Settings, from_env
from tether.domain.errors import (
    BadInput,
    CriteriaNotMet,
    DuplicateScope,
    NotAllowed,
    NotFound,
    Refused,
    ReplayConflict,
    TetherError,
)
from tether.domain.model import Answer, Mode, SliceState
from tether.services.context import Clock, Context, FixedClock

__all__ = [
    "Answer",
    "BadInput",
    "Clock",
    "Context",
    "CriteriaNotMet",
    "DuplicateScope",
    "FixedClock",
    "Mode",
    "NotAllowed",
    "NotFound",
    "Refused",
    "ReplayConflict",
    "Settings",
    "SliceState",
    "TetherError",
    "build",
    "from_env",
]
__version__ = "0.1.0"
