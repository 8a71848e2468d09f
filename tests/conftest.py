"""Shared fixtures: a real SQLite file per test, virtual time, helpers for the library and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tether.bootstrap import build
from tether.config import Settings
from tether.services import setup
from tether.services.context import Context, FixedClock

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def decision(i: int | str, **over: Any) -> dict[str, Any]:
    """A valid decision body; override any field."""
    body: dict[str, Any] = {
        "decision_id": f"d-{i}",
        "alert_id": f"A-{i}",
        "tenant": "acme",
        "severity": "low",
        "rule_family": "phishing",
        "data_source": "o365",
        "verdict": "close",
        "decided_at": iso(T0),
    }
    body.update(over)
    return body


def outcome(
    i: int | str, disposition: str = "false_positive", source: str = "review", **over: Any
) -> dict[str, Any]:
    """A valid outcome body for decision d-<i>; override any field."""
    body: dict[str, Any] = {
        "decision_id": f"d-{i}",
        "disposition": disposition,
        "source": source,
        "observed_at": iso(T0 + timedelta(hours=1)),
    }
    body.update(over)
    return body


# Every test that touches the store runs on both databases; TETHER_TEST_DATABASES narrows that.
DATABASES = [n.strip() for n in os.environ.get("TETHER_TEST_DATABASES", "sqlite,postgres").split(",") if n]
PG_SERVER = os.environ.get("TETHER_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One PostgreSQL database for this test run (each test gets its own schema in it), dropped at the end.

    A missing server fails the tests that need it under CI=true; elsewhere they are skipped, by name.
    """
    import psycopg

    admin = PG_SERVER.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    name = f"tether_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL is not reachable at {PG_SERVER}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield f"{PG_SERVER}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_schema_url(database_url: str) -> Iterator[str]:
    """A new, empty schema in the test database; the URL puts Tether in it (search_path)."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    raw = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(raw, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{database_url}?options=-csearch_path%3D{schema}"


def _new_database(request: pytest.FixtureRequest, kind: str, folder: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder}/{name}.db"
        return
    yield from pg_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for one test: a new SQLite file, or a new schema on the PostgreSQL server."""
    yield from _new_database(request, request.param, tmp_path, "tether")


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind as `db_url`."""
    kind = "sqlite" if db_url.startswith("sqlite") else "postgres"
    yield from _new_database(request, kind, tmp_path, "fresh")


@pytest.fixture(scope="module", params=DATABASES)
def module_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[], str]:
    """New databases for a module's servers, all of one kind (each such module runs once per kind)."""

    def new() -> str:
        return next(_new_database(request, request.param, tmp_path_factory.mktemp("db"), "tether"))

    return new


@pytest.fixture(scope="module")
def module_db_url(module_databases: Callable[[], str]) -> str:
    """The database of a module's main server."""
    return module_databases()


@pytest.fixture
def ctx(db_url: str) -> Iterator[Context]:
    """An initialised Tether on a fresh SQLite file, at T0 on a clock that moves only when told."""
    context = build(Settings(database_url=db_url, actor="tester"), clock=FixedClock(T0))
    setup.init(context)
    yield context
    context.db.dispose()


class Cli:
    """Runs the real `tether` executable against one database, in virtual time (TETHER_NOW)."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp, self.db_url, self.now, self.files = tmp, db_url, T0, 0

    def run(
        self, *args: object, expect: int | None = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {
            **os.environ,
            "TETHER_DATABASE_URL": self.db_url,
            "TETHER_NOW": iso(self.now),
            "TETHER_ACTOR": "tester",
        }
        full_env.update(env or {})
        exe = Path(sys.executable).with_name("tether")
        proc = subprocess.run(
            [str(exe), *map(str, args)],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.tmp,
        )
        if expect is not None:
            assert proc.returncode == expect, (
                f"tether {args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def json(self, *args: object, expect: int = 0) -> Any:
        return json.loads(self.run(*args, "--json", expect=expect).stdout)

    def jsonl(self, rows: list[Any], raw: str | None = None) -> Path:
        self.files += 1
        path = self.tmp / f"rows-{self.files}.jsonl"
        path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in rows))
        return path


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    """The CLI on an initialised database."""
    c = Cli(tmp_path, db_url)
    c.run("init")
    return c
