"""Engines for SQLite (WAL, one writing connection) and PostgreSQL, and Alembic migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "tether_write"


def make_engine(url: str, synchronous: str = "FULL") -> Engine:
    """An engine; on SQLite one connection carries every write (WAL, synchronous=FULL, IMMEDIATE)."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError("synchronous must be FULL or NORMAL")
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=60)

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


class Database:
    """An engine plus the per-process write lock; hands out transactions."""

    def __init__(self, url: str, synchronous: str = "FULL") -> None:
        self.url = url
        self.engine = make_engine(url, synchronous)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = threading.RLock()

    @contextmanager
    def transaction(self, write: bool) -> Iterator[Connection]:
        lock = self._write_lock if write and self.is_sqlite else None
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.connect() as conn:
                conn.info[_WRITE] = write
                with conn.begin():
                    yield conn
                conn.info[_WRITE] = False
        finally:
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
