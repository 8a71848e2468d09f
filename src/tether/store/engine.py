"""Engines for SQLite (WAL, one writing connection) and PostgreSQL, and Alembic migrations."""

from __future__ import annotations

import fcntl
import functools
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.pool import QueuePool

from tether.domain.errors import BadInput

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "tether_write"
BUMPED = "tether_bumped"  # set on a connection whose transaction changed the gate's version
# PostgreSQL states after which the whole transaction is simply run again: serialization failure, deadlock,
# and a unique key another transaction committed first (the re-run sees that row, e.g. a replayed decision).
TRANSIENT_STATES = frozenset({"40001", "40P01", "23505"})
RETRIES = 8
SQLITE_CONNECTIONS = 4  # per process: one writer at a time, the others read
CONNECT_TIMEOUT = 3  # seconds

P = ParamSpec("P")
R = TypeVar("R")


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in TRANSIENT_STATES


def unstorable(exc: DataError | UnicodeEncodeError) -> BadInput:
    """A value the database cannot hold is the caller's input, not a fault."""
    if isinstance(exc, UnicodeEncodeError):  # a lone surrogate, which no field check caught
        return BadInput("a value cannot be stored: text holds a lone surrogate, which is not Unicode text")
    return BadInput(f"a value cannot be stored: {str(exc.orig).strip()}")


def retry_transient(work: Callable[P, R]) -> Callable[P, R]:
    """Run a use case again (from its start, in a new transaction) when concurrent writers collided.

    Every use case is one transaction with no effect outside it, so a re-run is safe; on SQLite the
    single writer never collides and this never fires.
    """

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(RETRIES):
            try:
                return work(*args, **kwargs)
            except (DataError, UnicodeEncodeError) as exc:
                raise unstorable(exc) from None
            except DBAPIError as exc:
                if attempt == RETRIES - 1 or not is_transient(exc):
                    raise
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    return run


def make_engine(url: str, synchronous: str = "FULL") -> Engine:
    """An engine; on SQLite (WAL, synchronous=FULL) writes take the write lock up front (IMMEDIATE)."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("synchronous must be FULL or NORMAL")
    if not url.startswith("sqlite"):
        # A database that stops answering fails a connection attempt in seconds, never hangs a request.
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT})
    # Writes take turns (Database.transaction); with WAL, readers on other connections go on meanwhile, so
    # a request reading its token does not wait for another request's commit to reach the disk.
    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    readers = 1 if in_memory else SQLITE_CONNECTIONS
    engine = create_engine(url, poolclass=QueuePool, pool_size=readers, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A writer takes the lock up front, so a read-then-write never fails half-way with SQLITE_BUSY.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get(_WRITE) else "BEGIN")

    return engine


class _WriterQueue:
    """Tether's processes writing one SQLite file take turns on a lock file beside it.

    SQLite's own busy handler makes a waiting writer sleep in growing steps (up to 100 ms) and retry; a
    lock held in the kernel wakes the next writer the moment the previous one commits, so several server
    workers or CLI processes on one file hand the write lock over without idle gaps. Re-entrant per
    process (the caller holds the thread lock); the kernel frees it if the process dies.
    """

    def __init__(self, database: str | None) -> None:
        self.path = None if not database or database == ":memory:" else Path(f"{database}.write.lock")
        self._fd: int | None = None
        self._pid = 0
        self._depth = 0

    def enter(self) -> bool:
        if self.path is None:
            return False
        if self._depth == 0:
            if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._depth += 1
        return True

    def leave(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class Database:
    """An engine plus the per-process write lock; hands out transactions."""

    def __init__(self, url: str, synchronous: str = "FULL") -> None:
        self.url = url
        self.engine = make_engine(url, synchronous)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = threading.RLock()
        self._queue = _WriterQueue(self.engine.url.database) if self.is_sqlite else None
        self.bumps = 0  # gate-version changes committed by this process (services.gate reads it)

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Connection]:
        lock = self._write_lock if write and self.is_sqlite else None
        if lock is not None:
            lock.acquire()
        queued = self._queue is not None and lock is not None and self._queue.enter()
        try:
            with self.engine.connect() as conn:
                conn.info[_WRITE] = write
                try:
                    with conn.begin():
                        yield conn
                    if conn.info.get(BUMPED, False):
                        self.bumps += 1  # committed
                finally:  # the pooled connection's next transaction starts clean, after a rollback too
                    conn.info[_WRITE] = False
                    conn.info.pop(BUMPED, None)
        finally:
            if queued and self._queue is not None:
                self._queue.leave()
            if lock is not None:
                lock.release()

    def initialised(self) -> bool:
        with self.engine.connect() as conn:
            return inspect(conn).has_table("alembic_version") and inspect(conn).has_table("tether_meta")

    def migrate(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from alembic import command  # imported here: only init and serve migrate, and it is slow to load
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.connect() as conn:
            conn.info[_WRITE] = True
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()

    def dispose(self) -> None:
        self.engine.dispose()
