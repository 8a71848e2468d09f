"""What every command shares: option types, the global flags, error mapping and output."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import SQLAlchemyError

from tether import config
from tether.bootstrap import build
from tether.cli import render
from tether.domain.errors import Refused, TetherError
from tether.services.context import Context

Db = Annotated[
    str | None, typer.Option("--db", help="Database URL (else TETHER_DATABASE_URL, else ./tether.db).")
]
Json = Annotated[bool, typer.Option("--json", help="Print the JSON the HTTP API answers.")]
As = Annotated[
    str | None, typer.Option("--as", help="Act as this person (else TETHER_ACTOR, else the login).")
]
SliceRef = Annotated[str, typer.Argument(metavar="ID", help="A slice id, or its scope (tenant=acme).")]
Reason = Annotated[str, typer.Option("--reason", help="Why: recorded in the audit trail.")]


@dataclass
class _Global:
    db: str | None = None
    actor: str | None = None


GLOBAL = _Global()
F = TypeVar("F", bound=Callable[..., Any])


def _exit_code(exc: TetherError) -> int:
    return 1 if isinstance(exc, Refused) else 2


def handled(fn: F) -> F:
    """Map Tether's errors to one line on stderr and exit 1 (refused) or 2 (bad input)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TetherError as exc:
            # A file's error reads exactly `line N: FIELD: PROBLEM`; others say they are errors.
            located = exc.message.startswith("line ")
            typer.echo(exc.message if located else f"error: {exc.message}", err=True)
            raise typer.Exit(_exit_code(exc)) from None
        except SQLAlchemyError as exc:
            original = getattr(exc, "orig", None)
            first = (str(original) if original is not None else str(exc)).splitlines()[0]
            typer.echo(f"error: database: {first}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def context(
    db: str | None, actor: str | None = None, now: str | None = None, require_init: bool = True
) -> Context:
    settings = config.from_env(db=db or GLOBAL.db, actor=actor or GLOBAL.actor, now=now)
    ctx = build(settings)
    if require_init:
        ctx.require_initialised()
    return ctx


def out(as_json: bool, data: Any, human: Callable[[], None]) -> None:
    if as_json:
        render.print_json(data)
    else:
        human()
