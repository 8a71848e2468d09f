"""Keeps a server's gate view fresh: LISTEN/NOTIFY on PostgreSQL with a version poll as fallback.

Every change of slices, kill switches or policy bumps the gate version and, on PostgreSQL, notifies
GATE_CHANNEL when it commits; each replica's watcher wakes on it (or after POLL seconds at the latest),
re-reads the version and rebuilds its view when it moved. Each successful read marks the view fresh; when
the database cannot be read, the view ages, and past `max_staleness` the gate answers `shadow` / `stale`.
"""

from __future__ import annotations

import logging
import threading

from tether.services.context import Context
from tether.services.gate import refresh
from tether.store.engine import CONNECT_TIMEOUT
from tether.store.sql import GATE_CHANNEL

log = logging.getLogger("tether.watch")
POLL = 1.0  # seconds: the fallback when a notification is lost, and the freshness heartbeat
SQLITE_POLL = 0.1  # seconds: one process-local file, no notifications; a version read is cheap
RETRY = 0.5  # seconds between attempts while the database is unreachable


class GateWatcher:
    """A daemon thread refreshing `ctx.gate` until stopped."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tether-gate-watch", daemon=True)
        self.failing = False

    def start(self) -> None:
        self.ctx.gate.watched = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * POLL + CONNECT_TIMEOUT)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.ctx.db.is_sqlite:
                    self._poll()
                else:
                    self._listen()
            except Exception as exc:  # the database is down or the session broke: keep trying
                if not self.failing:
                    log.warning("gate view cannot be refreshed: %s", exc)
                self.failing = True
                self._stop.wait(RETRY)

    def _refresh(self) -> None:
        refresh(self.ctx)
        if self.failing:
            log.info("gate view refreshed again")
        self.failing = False

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._refresh()
            self._stop.wait(SQLITE_POLL)

    def _listen(self) -> None:
        import psycopg  # PostgreSQL only: the optional extra tether[postgres]

        url = self.ctx.db.engine.url.set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT) as conn:
            conn.execute(f"LISTEN {GATE_CHANNEL}")
            while not self._stop.is_set():
                self._refresh()
                for _ in conn.notifies(timeout=POLL, stop_after=1):
                    pass
