"""What the router measures: Prometheus metrics, and windows stored for rollout analysis.

Every answered request is counted per endpoint, deployment and source (``live`` or
``mirror``): requests, errors (5xx and deployments that could not be reached), latency and, when
the deployment batches, how many requests shared the model call; mirrored copies that fail on
their way (``cauce_mirror_errors_total``) are counted by reason, and live requests that failed
over from one deployment to another (``cauce_failovers_total``) by both deployments. The same
counts accumulate in a window that :meth:`RouterMetrics.drain` hands to the store every second,
so that rollout analysis, which may run in another process, reads the candidate's error rate
and latency quantiles from the store.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from cauce.store import now_ms
from cauce.store.schema import deployment_stats
from cauce.workspace import Workspace

# Upper bounds (ms) of the stored latency buckets: 5% apart from 0.1 ms to ~2 min, so that a
# quantile read back from them is within 5% of the exact one.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(0.1 * 1.05**i for i in range(290))
_PROMETHEUS_BUCKETS_S = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip


@dataclass
class Window:
    """Counts of one deployment and source since the last drain."""

    requests: int = 0
    errors: int = 0
    latency_sum_ms: float = 0.0
    buckets: dict[int, int] = field(default_factory=dict)

    def observe(self, latency_ms: float, error: bool) -> None:
        """Count one request."""
        self.requests += 1
        self.errors += error
        self.latency_sum_ms += latency_ms
        index = bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)
        self.buckets[index] = self.buckets.get(index, 0) + 1


class RouterMetrics:
    """The router's counters, in Prometheus form and as windows for the store."""

    def __init__(self, endpoint: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.endpoint = endpoint
        self.registry = CollectorRegistry()
        labels = ("endpoint", "deployment", "source")
        self._requests = Counter(
            "cauce_requests", "Scoring requests answered", labels, registry=self.registry
        )
        self._errors = Counter(
            "cauce_request_errors",
            "Scoring requests that failed in the deployment (5xx or unreachable)",
            labels,
            registry=self.registry,
        )
        self._latency = Histogram(
            "cauce_request_latency_seconds",
            "Time from the router sending a request to the deployment's answer",
            labels,
            buckets=_PROMETHEUS_BUCKETS_S,
            registry=self.registry,
        )
        self._batch = Histogram(
            "cauce_batch_size",
            "Requests scored together in one model call",
            ("endpoint", "deployment"),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self._mirror_errors = Counter(
            "cauce_mirror_errors",
            "Mirrored copies that failed before a deployment answered them (unreachable, "
            "timed out, or an error in the router)",
            ("endpoint", "deployment", "reason"),
            registry=self.registry,
        )
        self._failovers = Counter(
            "cauce_failovers",
            "Live requests that a deployment could not answer and another one did",
            ("endpoint", "deployment", "to"),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        self._windows: dict[tuple[str, str], Window] = {}
        self._window_start = now_ms()
        self._lock = threading.Lock()

    def observe(
        self, deployment: str, source: str, latency_ms: float, error: bool, batch: int | None
    ) -> None:
        """Count one request that a deployment answered (or failed to)."""
        key = (deployment, source)
        children = self._children.get(key)
        if children is None:
            labels = (self.endpoint, deployment, source)
            children = (
                self._requests.labels(*labels),
                self._errors.labels(*labels),
                self._latency.labels(*labels),
                self._batch.labels(self.endpoint, deployment),
            )
            self._children[key] = children
        requests, errors, latency, batches = children
        requests.inc()
        if error:
            errors.inc()
        latency.observe(latency_ms / 1000)
        if batch:
            batches.observe(batch)
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = Window()
            window.observe(latency_ms, error)

    def mirror_failed(self, deployment: str, reason: str) -> None:
        """Count one mirrored copy that failed in the router or on its way (``reason``)."""
        self._mirror_errors.labels(self.endpoint, deployment, reason).inc()

    def failed_over(self, deployment: str, to: str) -> None:
        """Count one live request that ``deployment`` could not answer and ``to`` answered."""
        self._failovers.labels(self.endpoint, deployment, to).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))

    def drain(self) -> tuple[int, int, dict[tuple[str, str], Window]]:
        """The windows since the last drain, with their start and end; counting starts anew."""
        with self._lock:
            windows, self._windows = self._windows, {}
            start, self._window_start = self._window_start, now_ms()
        return start, self._window_start, windows


def store_windows(
    ws: Workspace, endpoint_id: str, start: int, end: int, windows: dict[tuple[str, str], Window]
) -> None:
    """Write drained windows to the store (one transaction)."""
    if not windows:
        return
    rows = [
        {
            "endpoint_id": endpoint_id,
            "deployment": deployment,
            "source": source,
            "window_start": start,
            "window_end": end,
            "requests": w.requests,
            "errors": w.errors,
            "latency_sum_ms": w.latency_sum_ms,
            "latency_buckets": {str(k): v for k, v in w.buckets.items()},
        }
        for (deployment, source), w in windows.items()
    ]
    with ws.store.write() as conn:
        conn.execute(deployment_stats.insert(), rows)


@dataclass(frozen=True)
class Summary:
    """A deployment's requests over a time range, as read back from the store."""

    requests: int
    errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        """Errors over requests; None without requests."""
        return self.errors / self.requests if self.requests else None


def summarize(
    ws: Workspace,
    endpoint_id: str,
    deployment: str,
    since: int,
    until: int,
    sources: tuple[str, ...] = ("live", "mirror"),
) -> Summary:
    """Merge the stored windows that ended within ``(since, until]``."""
    s = deployment_stats.c
    with ws.store.read() as conn:
        rows = conn.execute(
            select(s.requests, s.errors, s.latency_buckets).where(
                s.endpoint_id == endpoint_id,
                s.deployment == deployment,
                s.source.in_(sources),
                s.window_end > since,
                s.window_end <= until,
            )
        ).all()
    buckets: dict[int, int] = {}
    for row in rows:
        for index, count in row.latency_buckets.items():
            buckets[int(index)] = buckets.get(int(index), 0) + int(count)
    return Summary(
        requests=sum(r.requests for r in rows),
        errors=sum(r.errors for r in rows),
        latency_p50_ms=quantile(buckets, 0.5),
        latency_p99_ms=quantile(buckets, 0.99),
    )


def quantile(buckets: dict[int, int], q: float) -> float | None:
    """A quantile of bucketed latencies, interpolated within its bucket (as Prometheus does)."""
    total = sum(buckets.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index in sorted(buckets):
        count = buckets[index]
        if seen + count >= rank:
            upper = LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
            lower = LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0.0
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
    return LATENCY_BOUNDS_MS[-1]
