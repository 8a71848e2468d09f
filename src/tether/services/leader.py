"""One evaluator at a time across replicas, with a fencing epoch.

On PostgreSQL the evaluator holds a session advisory lock on a connection of its own; on SQLite it holds an
exclusive lock on a file beside the database. Either is released by the operating system or the database
the moment the holding process dies, so another replica takes over at its next try (one evaluation
interval). Each new holder takes a new epoch from the database; every evaluation transaction checks that
its epoch is still the current one (services.evaluate), so a holder that lost its lock without noticing
cannot promote or roll back anything after a successor started.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from tether.store.engine import Database
from tether.store.sql import Tx

log = logging.getLogger("tether.leader")
LOCK_NAME = "tether/evaluator"


class Leadership:
    """Whether this process is the evaluator, and its epoch while it is."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.epoch: int | None = None
        self._conn: Connection | None = None  # PostgreSQL: the session holding the advisory lock
        self._file: IO[Any] | None = None  # SQLite: the open, locked lock file
        self._solo = False

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    def claim(self) -> int | None:
        """Keep or take the evaluator's lock; the epoch to evaluate under, or None when another holds it."""
        try:
            held = self._still_held() if self.epoch is not None else self._take()
        except (SQLAlchemyError, OSError) as exc:
            if self.epoch is not None:
                log.warning("evaluator lock unavailable: %s", exc)
            held = False
        if not held:
            if self.epoch is not None:
                log.warning("lost the evaluator lock (epoch %s)", self.epoch)
            self.release()
            return None
        if self.epoch is None:
            with self.db.transaction(write=True) as conn:
                self.epoch = Tx(conn).next_epoch()
            log.info("this replica is now the evaluator (epoch %s)", self.epoch)
        return self.epoch

    def _take(self) -> bool:
        if self.db.is_sqlite:
            name = self.db.engine.url.database
            if not name or name == ":memory:":
                self._solo = True  # a database in memory has one process by construction
                return True
            path = Path(name)
            handle = (path.parent / f"{path.name}.evaluator.lock").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._file = handle
            return True
        conn = self.db.engine.connect()
        try:
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(hashtext(current_schema() || :name))"), {"name": LOCK_NAME}
            ).scalar_one()
            conn.commit()
        except SQLAlchemyError:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def _still_held(self) -> bool:
        if self._conn is None:
            return self._file is not None or self._solo
        try:
            self._conn.execute(text("SELECT 1")).scalar_one()
            self._conn.commit()
        except SQLAlchemyError:
            return False  # the session is gone, and the lock with it
        return True

    def release(self) -> None:
        """Give the lock up (on shutdown, or after losing it); the next claim starts a new epoch."""
        self.epoch = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # The session is never handed back to the pool: closing it for good releases the lock.
            with contextlib.suppress(SQLAlchemyError):
                conn.invalidate()
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
        if self._file is not None:
            handle, self._file = self._file, None
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def describe(leadership: Leadership | None) -> dict[str, Any]:
    """The evaluator's role in this process, for /healthz."""
    if leadership is None:
        return {"role": "off"}
    return {
        "role": "leader" if leadership.leading else "standby",
        "epoch": leadership.epoch,
        "pid": os.getpid(),
    }
