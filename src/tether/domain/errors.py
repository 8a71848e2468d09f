"""The one error hierarchy of Tether; the API and the CLI each map it once.

TetherError
├── BadInput          malformed or invalid data, unknown field       (exit 2, HTTP 422)
│   └── NotInitialised  the database has no schema yet               (exit 2, HTTP 503)
├── NotFound          an id that names nothing                       (exit 2, HTTP 404)
├── Forbidden         the caller may not do this                     (exit 2, HTTP 403)
├── TooLarge          a body or batch over its limit                 (exit 2, HTTP 413)
├── ReplayConflict    a decision_id sent again with another body     (exit 2, HTTP 409)
└── Refused           a valid request that the rules turn down      (exit 1, HTTP 409)
    ├── NotAllowed      a transition not allowed from the current state
    ├── DuplicateScope  a scope that already has a slice
    ├── CriteriaNotMet  go-live criteria or a cool-down not met
    └── AuditBroken     the audit chain does not verify
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (field path, batch index, file line) and what."""

    msg: str
    loc: tuple[str | int, ...] = ()
    index: int | None = None

    def field(self) -> str:
        return ".".join(str(part) for part in self.loc)


class TetherError(Exception):
    """Base of every error Tether raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(TetherError):
    """Malformed or invalid input; carries the problems, each naming its field and index."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[Problem] = problems or []

    @classmethod
    def at(cls, field_name: str, msg: str, index: int | None = None) -> BadInput:
        """One problem on one field, optionally of one batch item."""
        prefix = f"item {index}: " if index is not None else ""
        return cls(f"{prefix}{field_name}: {msg}", [Problem(msg, (field_name,), index)])

    def with_index(self, index: int) -> BadInput:
        """The same problems, located at a batch item."""
        problems = [Problem(p.msg, p.loc, index) for p in self.problems] or [Problem(self.message, (), index)]
        first = problems[0]
        where = f"{first.field()}: " if first.loc else ""
        return BadInput(f"item {index}: {where}{first.msg}", problems)


class NotInitialised(BadInput):
    """The database has no Tether schema: run `tether init`."""


class NotFound(TetherError):
    """An id that names no slice, kill switch, decision or token."""


class Forbidden(TetherError):
    """The caller's role or tenants do not allow this."""


class TooLarge(TetherError):
    """A body or a batch over its configured limit."""


class ReplayConflict(TetherError):
    """A decision_id already recorded with a different body."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class Refused(TetherError):
    """A well-formed request that the current state or the rules turn down."""


class NotAllowed(Refused):
    """A transition not allowed from the slice's current state."""


class DuplicateScope(Refused):
    """A slice already exists for that scope."""


class CriteriaNotMet(Refused):
    """Go-live criteria or a cool-down not met; names each unmet criterion."""

    def __init__(self, message: str, unmet: list[str]) -> None:
        super().__init__(message)
        self.unmet = unmet


class AuditBroken(Refused):
    """The audit chain failed verification at a given sequence number."""

    def __init__(self, message: str, seq: int | None) -> None:
        super().__init__(message)
        self.seq = seq


class Fenced(Refused):
    """An evaluator acted under an epoch that another replica's takeover has superseded."""


NUL = "\x00"


def require_reason(reason: str, missing: str) -> None:
    """A reason a person gives for an action: not blank (`missing` says what needs it), storable."""
    if not reason.strip():
        raise BadInput.at("reason", missing)
    refuse_unstorable(reason=reason)


def refuse_unstorable(**fields: str | None) -> None:
    """Text no database can store, refused alike on both: U+0000 (PostgreSQL cannot hold it in text) and
    lone surrogates (JSON can carry `\\ud800`, but it is not Unicode text and has no UTF-8 form)."""
    for name, value in fields.items():
        if value is None:
            continue
        if NUL in value:
            raise BadInput.at(name, "must not contain the NUL character (U+0000)")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput.at(name, "must be Unicode text (it holds a lone surrogate)") from None
