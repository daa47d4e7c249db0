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

from sqlalchemy import Connection, select

from cauce.errors import InvalidInput, NotFound
from cauce.operations import operation
from cauce.store import now_ms
from cauce.store.schema import deployment_stats, endpoints
from cauce.validation import check_time_ms
from cauce.workspace import Workspace, current

# Upper bounds (ms) of the stored latency buckets: 5% apart from 0.1 ms to ~2 min, so that a
# quantile read back from them is within 5% of the exact one.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(0.1 * 1.05**i for i in range(290))
SOURCES = ("live", "mirror")
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


class _Collected:
    """A Prometheus collector reading a data collector's counts when scraped."""

    def __init__(self, endpoint: str, collector: Any) -> None:
        self.endpoint, self.collector = endpoint, collector

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        c = self.collector
        for name, about, counts in (
            (
                "cauce_collected_records",
                "Answered requests the data collector wrote, and those it lost (a writer that "
                "died, a record it could not parse or write)",
                (("written", c.written), ("lost", c.errors)),
            ),
            (
                "cauce_collected_traces",
                "Traces of relayed GenAI requests the data collector stored, and those it lost "
                "(a writer that died, a store that refused them)",
                (("stored", c.traces_stored), ("lost", c.traces_lost)),
            ),
        ):
            family = CounterMetricFamily(name, about, labels=("endpoint", "outcome"))
            for outcome, count in counts:
                family.add_metric((self.endpoint, outcome), count)
            yield family


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

    def count_collected(self, collector: Any) -> None:
        """Expose what the endpoint's data collector wrote and lost as
        ``cauce_collected_records_total`` and ``cauce_collected_traces_total`` by ``outcome``."""
        self.registry.register(_Collected(self.endpoint, collector))

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


@dataclass(frozen=True)
class WindowCounts:
    """One deployment's and source's counts over a drained window, as stored."""

    deployment: str
    source: str
    requests: int
    errors: int
    latency_sum_ms: float
    latency_buckets: dict[int, int]


def store_windows(
    ws: Workspace,
    endpoint: str,
    endpoint_id: str,
    start: int,
    end: int,
    windows: dict[tuple[str, str], Window],
) -> None:
    """Write drained windows to the store (one transaction); nothing for none."""
    if windows:
        counts = [
            WindowCounts(deployment, source, w.requests, w.errors, w.latency_sum_ms, w.buckets)
            for (deployment, source), w in windows.items()
        ]
        record_windows(endpoint, endpoint_id, start, end, counts, workspace=ws)


@operation("POST /endpoints/{endpoint}/stats")
def record_windows(
    endpoint: str,
    endpoint_id: str,
    start: int,
    end: int,
    windows: list[WindowCounts],
    *,
    workspace: Workspace | None = None,
) -> None:
    """Store a router's counts of ``(start, end]`` for an endpoint (the one ``endpoint_id`` names:
    a router of an endpoint deleted and created anew since is refused)."""
    ws = workspace or current()
    _check_windows(start, end, windows)
    rows = [
        {
            "endpoint_id": endpoint_id,
            "deployment": w.deployment,
            "source": w.source,
            "window_start": start,
            "window_end": end,
            "requests": w.requests,
            "errors": w.errors,
            "latency_sum_ms": w.latency_sum_ms,
            "latency_buckets": {str(k): v for k, v in w.latency_buckets.items()},
        }
        for w in windows
    ]
    with ws.store.write() as conn:
        _check_endpoint(conn, endpoint, endpoint_id)
        if rows:
            conn.execute(deployment_stats.insert(), rows)


def _check_windows(start: int, end: int, windows: list[WindowCounts]) -> None:
    if check_time_ms(start, "start") > check_time_ms(end, "end"):
        raise InvalidInput(
            f"a window runs from start to end, not from {start} back to {end}",
            details={"field": "end"},
        )
    for i, w in enumerate(windows):
        where = f"windows.{i}"
        if w.source not in SOURCES:
            raise InvalidInput(
                f"{where}.source must be one of {', '.join(SOURCES)}, not {w.source!r}",
                details={"field": f"{where}.source"},
            )
        if not 0 <= w.errors <= w.requests or sum(w.latency_buckets.values()) != w.requests:
            raise InvalidInput(
                f"{where}: {w.errors} errors and {sum(w.latency_buckets.values())} bucketed "
                f"latencies do not fit {w.requests} requests",
                details={"field": f"{where}.requests"},
            )
        if any(not 0 <= k <= len(LATENCY_BOUNDS_MS) or v < 0 for k, v in w.latency_buckets.items()):
            raise InvalidInput(
                f"{where}.latency_buckets: a bucket index runs from 0 to "
                f"{len(LATENCY_BOUNDS_MS)} and a count is 0 or more",
                details={"field": f"{where}.latency_buckets"},
            )


def _check_endpoint(conn: Connection, endpoint: str, endpoint_id: str) -> None:
    found = conn.execute(select(endpoints.c.id).where(endpoints.c.name == endpoint)).scalar()
    if found != endpoint_id:
        raise NotFound(
            f"endpoint {endpoint!r} "
            + ("does not exist" if found is None else f"is not {endpoint_id} any more"),
            hint="it was deleted since the router started; restart the router",
        )


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


@operation("GET /endpoints/{endpoint}/deployments/{deployment}/stats")
def summarize(
    endpoint: str,
    deployment: str,
    since: int,
    until: int,
    sources: tuple[str, ...] = SOURCES,
    *,
    workspace: Workspace | None = None,
) -> Summary:
    """Merge the windows a deployment's routers stored that ended within ``(since, until]``."""
    ws = workspace or current()
    check_time_ms(since, "since")
    check_time_ms(until, "until")
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise InvalidInput(
            f"sources are among {', '.join(SOURCES)}, not {unknown[0]!r}",
            details={"field": "sources"},
        )
    s = deployment_stats.c
    with ws.store.read() as conn:
        endpoint_id = conn.execute(
            select(endpoints.c.id).where(endpoints.c.name == endpoint)
        ).scalar()
        if endpoint_id is None:
            raise NotFound(f"endpoint {endpoint!r} does not exist")
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
