"""Prometheus metrics at /metrics.

Cardinality is bounded: per-slice series are labelled by slice id and state (never by raw scope
values, which could be unbounded), so there are at most (number of slices) series per metric.
Slice figures, event counts and the outbox backlog are read from the database at scrape time, so
every replica reports the same numbers; gate answers and request latencies are per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from fastapi import APIRouter, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.domain.evidence import evidence_dict
from tether.services.context import Context, Observer
from tether.services.lifecycle import effective_policy
from tether.store.sql import Tx


class PrometheusObserver(Observer):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.answers = Counter(
            "tether_gate_answers", "Gate answers given, by mode", ["mode"], registry=registry
        )
        self.failures = Counter(
            "tether_gate_fail_closed",
            "Gate answers that failed closed, by reason",
            ["reason"],
            registry=registry,
        )
        self._by_mode: dict[str, Counter] = {}  # each mode's series, looked up once

    def answered(self, mode: str, count: int = 1) -> None:
        series = self._by_mode.get(mode)
        if series is None:
            series = self._by_mode[mode] = self.answers.labels(mode)
        series.inc(count)

    def gate_failed(self, reason: str) -> None:
        self.failures.labels(reason).inc()


class StoreCollector(Collector):
    """Slice evidence, transitions and the outbox backlog, read from the database at scrape time."""

    def __init__(
        self,
        ctx: Context,
        evaluator_age: Callable[[], float | None],
        leading: Callable[[], bool | None] = lambda: None,
    ) -> None:
        self.ctx, self.evaluator_age, self.leading = ctx, evaluator_age, leading

    def collect(self) -> Iterator[Metric]:
        labels = ["slice_id", "state"]
        precision = GaugeMetricFamily(
            "tether_slice_precision", "Precision of the current attempt", labels=labels
        )
        reviews = GaugeMetricFamily(
            "tether_slice_reviews", "Reviews counted in the current attempt", labels=labels
        )
        missed = GaugeMetricFamily(
            "tether_slice_missed_tp", "Missed true positives of the attempt", labels=labels
        )
        state = GaugeMetricFamily("tether_slice_state", "1 for the slice's current state", labels=labels)
        with self.ctx.db.transaction(write=False) as conn:
            tx = Tx(conn)
            now = self.ctx.clock.now()
            for s in tx.slices():
                ev = evidence_dict(s, effective_policy(tx, s), now)
                key = [s.id, s.state.value]
                if ev["precision"] is not None:
                    precision.add_metric(key, ev["precision"])
                reviews.add_metric(key, ev["reviewed"])
                missed.add_metric(key, ev["missed_tp"])
                state.add_metric(key, 1)
            events = tx.event_counts()
            backlog = tx.outbox_backlog()
        yield from (precision, reviews, missed, state)
        transitions = GaugeMetricFamily(
            "tether_transitions", "Transitions so far (audit trail)", labels=["kind"]
        )
        for kind, event in (("promotion", "canary.promoted"), ("rollback", "canary.rolled_back")):
            transitions.add_metric([kind], events.get(event, 0))
        yield transitions
        yield GaugeMetricFamily("tether_outbox_backlog", "Webhook deliveries waiting", value=backlog)
        age = self.evaluator_age()
        if age is not None:
            yield GaugeMetricFamily(
                "tether_evaluator_last_run_age_seconds", "Seconds since the last cycle", value=age
            )
        leading = self.leading()
        if leading is not None:
            yield GaugeMetricFamily(
                "tether_evaluator_leader", "1 when this process is the evaluator", value=int(leading)
            )


class Timed:
    """ASGI middleware: every HTTP request's latency, by method, route template and status."""

    def __init__(self, app: ASGIApp, latency: Histogram) -> None:
        self.app, self.latency = app, latency
        self._series: dict[tuple[str, str, str], Histogram] = {}  # each label set's series, looked up once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the router notes it in the scope
            seconds = time.perf_counter() - start
            key = (scope["method"], route, str(status[0]))
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = self.latency.labels(*key)
            series.observe(seconds)


def install(
    app: FastAPI,
    ctx: Context,
    evaluator_age: Callable[[], float | None],
    leading: Callable[[], bool | None] = lambda: None,
) -> CollectorRegistry:
    """Wire the observer into the context, time every request, and serve /metrics."""
    registry = CollectorRegistry()
    ctx.observer = PrometheusObserver(registry)
    registry.register(StoreCollector(ctx, evaluator_age, leading))
    latency = Histogram(
        "tether_request_seconds", "HTTP request latency", ["method", "route", "status"], registry=registry
    )

    app.add_middleware(Timed, latency=latency)

    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return registry
