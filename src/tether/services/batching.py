"""Group commit: concurrent decide requests of one process recorded in one durable transaction.

Every request still stands alone: it runs in a savepoint of its own, so its replay conflict, bad value or
fault rolls back only its own work and is answered to it alone, while its neighbours commit. Nothing is
answered before the shared commit returns. One committer thread per process takes whatever queued while
the previous commit ran, so a lone request waits for nobody and a crowd shares one flush of the disk; while
a crowd keeps it busy, it waits a moment (at most LINGER) for its next group to fill.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError

from tether.domain.model import Answer, DecisionIn
from tether.services import tokens
from tether.services.context import Context
from tether.services.decide import MAX_BATCH, DecisionAnswer, decide_in, observe, parse_batch
from tether.store.engine import Database, is_transient, retry_transient, unstorable
from tether.store.sql import Tx

LINGER = 0.002  # seconds at most that a busy committer waits for its next group to fill


@dataclass
class _Request:
    """One caller's parsed batch, waiting for the group it joins to commit."""

    ctx: Context
    batch: list[DecisionIn]
    token: str | None = None  # the caller's secret hash, checked again inside the shared transaction
    then: Callable[[], object] | None = None  # called from the committer thread once the request is done
    done: threading.Event = field(default_factory=threading.Event)
    answers: list[DecisionAnswer] = field(default_factory=list)
    fresh: list[tuple[DecisionIn, Answer]] = field(default_factory=list)
    error: BaseException | None = None


class _GroupFailed(Exception):
    """The shared transaction cannot go on: every request of the group gets this cause."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Separately(Exception):
    """A request of a group run in one pass failed: the group runs again, each request on its own."""


def _as_exception(error: BaseException) -> Exception:
    return error if isinstance(error, Exception) else RuntimeError(str(error))


class GroupCommit:
    """`decide` for many threads at once, each request all or nothing, sharing commits."""

    def __init__(self, db: Database, max_items: int = MAX_BATCH, linger: float = LINGER) -> None:
        self.db, self.max_items, self.linger = db, max_items, linger
        self._queue: deque[_Request] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def decide(self, ctx: Context, items: list[Any], token: str | None = None) -> list[DecisionAnswer]:
        """What `services.decide.decide` answers, or raises, for these items; recorded in a shared commit
        (`token`: see `submit`)."""
        request = self.submit(ctx, items, token)
        request.done.wait()
        return self.answers(request)

    def submit(
        self,
        ctx: Context,
        items: list[Any],
        token: str | None = None,
        then: Callable[[], object] | None = None,
    ) -> _Request:
        """Queue these items for the next group without waiting: `then` is called from the committer thread
        when the request is done, and `answers` then gives its answers or raises its error.

        With `token` (the caller's secret hash), the group's transaction reads the token again and records
        nothing for the request when it is no longer active (`tokens.NotAuthenticated`).
        """
        batch = parse_batch(items, ctx)  # bad input is refused here, before joining any group
        ctx.principal.require_tenants(d.tenant for d in batch)
        request = _Request(ctx, batch, token, then)
        with self._ready:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            self._queue.append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tether-group-commit", daemon=True)
                self._thread.start()
            self._ready.notify()
        return request

    @staticmethod
    def answers(request: _Request) -> list[DecisionAnswer]:
        """A done request's answers (its new decisions counted in the metrics), or its error."""
        if request.error is not None:
            raise request.error
        observe(request.ctx, request.fresh)
        return request.answers

    def decide_together(
        self, calls: list[tuple[Context, list[Any]]]
    ) -> list[list[DecisionAnswer] | Exception]:
        """Several callers' batches recorded as one group, in this thread: each one's answers or error."""
        requests: list[_Request] = []
        out: list[list[DecisionAnswer] | Exception] = []
        for ctx, items in calls:
            try:
                batch = parse_batch(items, ctx)
                ctx.principal.require_tenants(d.tenant for d in batch)
            except Exception as exc:
                out.append(exc)
                continue
            requests.append(_Request(ctx, batch))
            out.append([])
        self._commit(requests)
        queued = iter(requests)
        for i, result in enumerate(out):
            if isinstance(result, list):
                request = next(queued)
                if request.error is None:
                    observe(request.ctx, request.fresh)
                out[i] = request.answers if request.error is None else _as_exception(request.error)
        return out

    def stop(self) -> None:
        """Finish the groups already queued, then let the committer thread end."""
        with self._ready:
            self._stopping = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        last = 1
        while True:
            with self._ready:
                while not self._queue and not self._stopping:
                    self._ready.wait()
                if not self._queue:
                    return
                self._gather(last)
                group = self._take()
            last = len(group)
            self._commit(group)

    def _gather(self, last: int) -> None:
        """While callers keep the committer busy (the last group had several requests), wait a moment, at
        most `linger` seconds, for as many requests as the last group had: fewer and larger commits leave
        more of the process's time to the requests themselves. A lone caller's request is taken at once."""
        if last < 2 or not self.linger:
            return
        deadline = time.monotonic() + self.linger
        while len(self._queue) < last and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._ready.wait(remaining)

    def _take(self) -> list[_Request]:
        """Everything queued, in arrival order, up to about `max_items` decisions (at least one request)."""
        group = [self._queue.popleft()]
        items = len(group[0].batch)
        while self._queue and items + len(self._queue[0].batch) <= self.max_items:
            items += len(self._queue[0].batch)
            group.append(self._queue.popleft())
        return group

    def _commit(self, group: list[_Request]) -> None:
        """Run the group in one transaction, again from the start when concurrent writers collided."""
        try:
            self._once(group)
        except _GroupFailed as failed:
            self._fail(group, failed.cause)
        except BaseException as exc:  # the commit itself failed: nothing of the group is recorded
            self._fail(group, exc)
        for request in group:
            request.done.set()
            if request.then is not None:
                with contextlib.suppress(Exception):  # a waiter gone with its event loop waits no more
                    request.then()

    def _fail(self, group: list[_Request], exc: BaseException) -> None:
        for request in group:
            request.error, request.answers, request.fresh = exc, [], []
        self._forget_view(group)

    @retry_transient  # collisions with other writers run the whole group again
    def _once(self, group: list[_Request]) -> None:
        for request in group:
            request.error, request.answers, request.fresh = None, [], []
        try:
            with self.db.transaction(write=True) as conn:
                tx = Tx(conn)
                live = self._authenticated(tx, group)
                if self._together(live):
                    self._all_at_once(tx, live)
                    return
                for request in live:
                    self._one(conn, tx, request)
                return
        except _Separately:
            pass  # someone's error undid the pass: found again below, and answered to it alone
        with self.db.transaction(write=True) as conn:
            tx = Tx(conn)
            self._forget_view(group, tx.version())
            for request in self._authenticated(tx, group):
                self._one(conn, tx, request)

    @staticmethod
    def _authenticated(tx: Tx, group: list[_Request]) -> list[_Request]:
        """The requests whose token is still active in this transaction; the others are refused here, so a
        revocation committed by any process acts on every decision recorded after it."""
        digests = {r.token for r in group if r.token is not None}
        if not digests:
            return group
        active = tokens.active_in(group[0].ctx, tx, digests)
        for request in group:
            if request.token is not None and request.token not in active:
                request.error = tokens.NotAuthenticated("unknown or revoked token")
        return [r for r in group if r.error is None]

    @staticmethod
    def _together(group: list[_Request]) -> bool:
        """Whether the group can run in one pass: requests of one caller naming distinct decisions."""
        if not group:
            return False
        first = group[0].ctx
        names: set[str] = set()
        for request in group:
            if request.ctx.actor != first.actor or request.ctx.principal != first.principal:
                return False
            ids = {d.decision_id for d in request.batch}
            if not names.isdisjoint(ids):
                return False  # a replay within the group: each request answers on its own
            names |= ids
        return True

    @staticmethod
    def _all_at_once(tx: Tx, group: list[_Request]) -> None:
        """The common case in one pass (one read of known ids, one insert), with no savepoint: any error
        raises _Separately, and the group runs again in a new transaction, one savepoint per request."""
        try:
            answers, fresh = decide_in(group[0].ctx, tx, [d for r in group for d in r.batch])
        except Exception as exc:
            if is_transient(exc):
                raise  # the whole group runs again
            raise _Separately from exc
        owner = {id(d): request for request in group for d in request.batch}
        at = 0
        for request in group:
            request.answers = answers[at : at + len(request.batch)]
            at += len(request.batch)
        for d, answer in fresh:
            owner[id(d)].fresh.append((d, answer))

    def _one(self, conn: Connection, tx: Tx, request: _Request) -> None:
        """One request in its own savepoint: its error undoes its own work only."""
        savepoint = conn.begin_nested()
        try:
            request.answers, request.fresh = decide_in(request.ctx, tx, request.batch)
        except DBAPIError as exc:
            if is_transient(exc):
                raise  # the whole group runs again
            savepoint.rollback()
            if not isinstance(exc, DataError):
                raise _GroupFailed(exc) from exc  # the connection may be unusable: fail the group
            request.error = unstorable(exc)
        except Exception as exc:  # a request's own refusal or fault is answered to it alone
            savepoint.rollback()
            request.error = unstorable(exc) if isinstance(exc, UnicodeEncodeError) else exc
        else:
            savepoint.commit()
            return
        request.answers, request.fresh = [], []
        self._forget_view([request], tx.version())

    @staticmethod
    def _forget_view(requests: list[_Request], version: int | None = None) -> None:
        # A request may have rebuilt the gate's view from changes that were then rolled back (a slice
        # restarted by a new model): the gate reads the database again rather than trust that view.
        for request in requests:
            cache = request.ctx.gate
            with cache.lock:
                if cache.view is not None and cache.view.version != version:
                    cache.view = None
