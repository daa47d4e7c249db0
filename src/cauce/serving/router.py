"""The router: one endpoint's address, splitting live traffic across its deployments.

Each scoring request goes to one deployment, drawn by the endpoint's ``traffic`` weights, or to
the deployment named by the ``cauce-deployment`` header. ``mirror`` sends a copy of a percentage
of requests to one more deployment: its answers are measured and collected, never returned, and
its failures never reach the caller (they are counted in ``cauce_mirror_errors_total`` and
logged). A deployment that cannot be reached (a worker killed mid-request, a deployment down)
is tried again, then the request fails over to another healthy deployment (counted in
``cauce_failovers_total``); callers see an error only when no deployment can answer. The router
re-reads the endpoint from the store when its revision moves, so traffic changes made by
``cauce endpoints traffic`` or by a rollout take effect within a second, without a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from cauce.errors import BackendError, CauceError, NotFound, UpstreamTimeout
from cauce.serving.codec import HEADER_LENGTH
from cauce.serving.collector import Collector, Record
from cauce.serving.endpoints import Endpoint, get_endpoint
from cauce.serving.http import (
    Receive,
    Scope,
    Send,
    header,
    lifespan,
    openapi,
    read_body,
    respond,
    respond_error,
    respond_json,
)
from cauce.serving.metrics import RouterMetrics, store_windows
from cauce.serving.upstream import Reply, Upstream, UpstreamError
from cauce.workspace import Workspace

log = logging.getLogger("cauce.router")
_SCORING = re.compile(r"^/(invocations|v2/models/[^/]+/infer)$")
_HEADER_LENGTH = HEADER_LENGTH.encode()
_FORWARDED = (b"content-type", b"accept", _HEADER_LENGTH)
# Deployment headers callers see.
_ANSWERED = (b"cauce-model-version", b"cauce-batch-size", _HEADER_LENGTH)
RELOAD_EVERY_S = 1.0
HEALTH_EVERY_S = 1.0
MAX_MIRRORS_IN_FLIGHT = 256
MIRROR_LOG_EVERY_S = 10.0


class Router:
    """The router's ASGI application and its background loops."""

    def __init__(
        self,
        ws: Workspace,
        endpoint: str,
        addresses: Callable[[], dict[str, str]],
        *,
        collect: bool = True,
        health_every: float = HEALTH_EVERY_S,
    ) -> None:
        self.ws = ws
        self.health_every = health_every  # seconds between health checks of every deployment
        self.name = endpoint
        self.addresses = addresses  # deployment name -> http://host:port, kept current by the owner
        self.endpoint: Endpoint = get_endpoint(endpoint, workspace=ws)
        self.metrics = RouterMetrics(endpoint)
        self.collector = Collector(ws, endpoint) if collect else None
        if self.collector is not None:
            self.collector.configure(self.endpoint.deployments)
        self.healthy: dict[str, bool] = {}
        self._upstreams: dict[str, Upstream] = {}
        self._mirrors: set[asyncio.Task[None]] = set()
        self._mirror_logged: dict[tuple[str, str], tuple[float, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Started and stopped with the router: the local supervisor of deployment processes.
        self.on_start: list[Callable[[], Any]] = []
        self.on_stop: list[Callable[[], Any]] = []
        self._openapi = json.dumps(openapi(f"Cauce endpoint {endpoint}")).encode()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reloading, health checks and stats flushing (inside the running loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(RELOAD_EVERY_S, self._reload)),
            loop.create_task(self._every(self.health_every, self._check_health)),
            loop.create_task(self._every(1.0, self._flush_stats)),
        ]
        for hook in self.on_start:
            await hook()

    async def stop(self) -> None:
        """Stop the loops, store the last stats, write and register collected records."""
        for hook in self.on_stop:
            await hook()
        for task in self._tasks:
            task.cancel()
        for task in list(self._mirrors):
            task.cancel()
        await self._flush_stats()
        for upstream in self._upstreams.values():
            await upstream.close()
        if self.collector is not None:
            await asyncio.to_thread(self.collector.close)

    async def _every(self, seconds: float, job: Callable[[], Any]) -> None:
        while True:
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store hiccup must not stop the loop
                log.warning("router %s: %s failed: %s", self.name, job.__name__, exc)
            await asyncio.sleep(seconds)

    async def _reload(self) -> None:
        from cauce.serving.endpoints import endpoint_revision

        revision = await asyncio.to_thread(endpoint_revision, self.name, workspace=self.ws)
        if revision != self.endpoint.revision:
            self.endpoint = await asyncio.to_thread(get_endpoint, self.name, workspace=self.ws)
            if self.collector is not None:
                self.collector.configure(self.endpoint.deployments)

    async def _check_health(self) -> None:
        names = [d.name for d in self.endpoint.deployments]
        results = await asyncio.gather(*(self._ready(n) for n in names))
        self.healthy = dict(zip(names, results, strict=True))

    async def _ready(self, deployment: str) -> bool:
        upstream = self._upstream(deployment)
        if upstream is None:
            return False
        try:
            reply = await upstream.request(b"GET", b"/v2/health/ready", b"", [], timeout=2.0)
        except (UpstreamError, TimeoutError):
            return False
        return reply.status == 200

    async def _flush_stats(self) -> None:
        start, end, windows = self.metrics.drain()
        if windows:
            await asyncio.to_thread(store_windows, self.ws, self.endpoint.id, start, end, windows)

    def _upstream(self, deployment: str) -> Upstream | None:
        url = self.addresses().get(deployment)
        if url is None:
            return None
        upstream = self._upstreams.get(deployment)
        if upstream is None or upstream.url != url:
            upstream = self._upstreams[deployment] = Upstream(url)
        return upstream

    # -- requests ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, self.start, self.stop)
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except CauceError as exc:
            await respond_error(send, exc, scope["path"])

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method == "POST" and _SCORING.match(path):
            await self._score(scope, receive, send, path)
        elif method == "GET" and path == "/metrics":
            await respond(
                send, 200, self.metrics.exposition(), content_type=b"text/plain; version=0.0.4"
            )
        elif method == "GET" and path in ("/ping", "/health", "/v2/health/live"):
            await respond_json(send, 200, {"live": True})
        elif method == "GET" and path == "/v2/health/ready":
            ready = self._live_deployments()
            await respond_json(
                send, 200 if ready else 503, {"ready": bool(ready), "deployments": self.healthy}
            )
        elif method == "GET" and path == "/openapi.json":
            await respond(send, 200, self._openapi)
        elif method == "GET" and (path == "/v2" or path.startswith("/v2/models/")):
            await self._forward_get(scope, send, path)
        else:
            raise NotFound(f"no such path: {method} {path}", details={"field": "path"})

    def _live_deployments(self) -> list[str]:
        """Deployments that take live traffic and answer their health check."""
        return [n for n, w in self.endpoint.traffic.items() if w > 0 and self.healthy.get(n)]

    def _choose(self) -> str:
        traffic = self.endpoint.traffic
        # A deployment takes live traffic once it has answered a health check: one applied a
        # moment ago (a rollout's new candidate) waits for its workers instead of failing.
        candidates = [(n, w) for n, w in traffic.items() if w > 0 and self.healthy.get(n)]
        if not candidates:  # nothing healthy with traffic: any healthy deployment will do
            candidates = [(n, 1) for n, ok in self.healthy.items() if ok]
        if not candidates:  # health may lag (servers starting): try the split; sending decides
            candidates = [(n, w) for n, w in traffic.items() if w > 0]
        if not candidates:
            raise BackendError(
                f"endpoint {self.name!r} has no deployment that can answer",
                hint="see cauce endpoints show and cauce deployments logs",
            )
        point = random.random() * sum(w for _, w in candidates)
        for name, weight in candidates:
            point -= weight
            if point < 0:
                return name
        return candidates[-1][0]

    async def _score(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        body = await read_body(scope, receive, self.endpoint.max_request_bytes)
        headers = [(k, v) for k, v in scope["headers"] if k in _FORWARDED]
        correlation = (header(scope, b"x-request-id") or uuid.uuid4().hex.encode())[:128]
        headers.append((b"x-request-id", correlation))
        target = header(scope, b"cauce-deployment")
        if target is not None:
            deployment = target.decode("latin-1")
            self.endpoint.deployment(deployment)  # NotFound names the deployments
        else:
            deployment = self._choose()
            self._maybe_mirror(path, body, headers, correlation)
        answered_by, reply, latency = await self._send(
            deployment, path.encode(), body, headers, pinned=target is not None
        )
        self._account(answered_by, "live", reply, latency, body, headers, correlation, path)
        await respond(
            send,
            reply.status,
            reply.body,
            content_type=reply.headers.get(b"content-type", b"application/json"),
            headers=[
                (b"x-request-id", correlation),
                (b"cauce-deployment", answered_by.encode()),
                *((k, reply.headers[k]) for k in _ANSWERED if k in reply.headers),
            ],
        )

    async def _send(
        self,
        deployment: str,
        path: bytes,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        *,
        pinned: bool = False,
    ) -> tuple[str, Reply, float]:
        """Send to ``deployment``; on a transport failure, once more, then to another."""
        timeout = self.endpoint.timeout_ms / 1000
        deadline = time.monotonic() + timeout
        tried: list[str] = []
        last: Exception | None = None
        first = deployment
        for attempt in range(4):
            upstream = self._upstream(deployment)
            started = time.perf_counter()
            try:
                if upstream is None:
                    raise UpstreamError(f"deployment {deployment!r} is not running")
                reply = await upstream.request(
                    b"POST", path, body, headers, max(0.001, deadline - time.monotonic())
                )
                if reply.status != 503:  # 503: not ready yet, like a refused connection
                    if deployment != first:
                        self.metrics.failed_over(first, deployment)
                    return deployment, reply, (time.perf_counter() - started) * 1000
                last = UpstreamError(f"deployment {deployment!r} is not ready")
            except TimeoutError:
                latency = (time.perf_counter() - started) * 1000
                self.metrics.observe(deployment, "live", latency, True, None)
                raise UpstreamTimeout(
                    f"deployment {deployment!r} did not answer within {timeout:g} s"
                ) from None
            except UpstreamError as exc:
                last = exc
            self.metrics.observe(
                deployment, "live", (time.perf_counter() - started) * 1000, True, None
            )
            tried.append(deployment)
            if attempt >= 1 and not pinned:  # the same deployment failed twice: fail over
                others = [
                    n
                    for n, ok in self.healthy.items()
                    if ok and n not in tried and n in self._routable()
                ]
                if others:
                    deployment = random.choice(others)
            await asyncio.sleep(0.01 * attempt)
        raise BackendError(f"no deployment of endpoint {self.name!r} could answer: {last}")

    def _routable(self) -> set[str]:
        """Deployments a live request may fail over to: those with traffic, else any."""
        with_traffic = {n for n, w in self.endpoint.traffic.items() if w > 0}
        return with_traffic or {d.name for d in self.endpoint.deployments}

    def _maybe_mirror(
        self, path: str, body: bytes, headers: list[tuple[bytes, bytes]], correlation: bytes
    ) -> None:
        for deployment, percent in self.endpoint.mirror.items():
            if percent <= 0 or random.random() * 100 >= percent:
                continue
            if len(self._mirrors) >= MAX_MIRRORS_IN_FLIGHT:
                return  # the shadow is behind: drop the copy rather than queue without bound
            task = asyncio.get_running_loop().create_task(
                self._mirror(deployment, path.encode(), body, headers, correlation)
            )
            self._mirrors.add(task)
            task.add_done_callback(self._mirrors.discard)

    async def _mirror(
        self,
        deployment: str,
        path: bytes,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        correlation: bytes,
    ) -> None:
        """Send a shadow copy; its failures are counted and logged, never raised."""
        started = time.perf_counter()
        try:
            upstream = self._upstream(deployment)
            if upstream is None:
                raise UpstreamError(f"deployment {deployment!r} is not running")
            reply = await upstream.request(
                b"POST", path, body, headers, self.endpoint.timeout_ms / 1000
            )
            latency = (time.perf_counter() - started) * 1000
            self._account(
                deployment, "mirror", reply, latency, body, headers, correlation, path.decode()
            )
        except (UpstreamError, TimeoutError) as exc:
            latency = (time.perf_counter() - started) * 1000
            self.metrics.observe(deployment, "mirror", latency, True, None)
            reason = "timeout" if isinstance(exc, TimeoutError) else "unreachable"
            self._mirror_failed(deployment, reason, exc)
        except Exception as exc:  # a bug in the router: the caller has its answer already
            self._mirror_failed(deployment, "internal", exc)

    def _mirror_failed(self, deployment: str, reason: str, exc: BaseException) -> None:
        """Count a failed mirror copy; log it, at most once per deployment and reason every
        ``MIRROR_LOG_EVERY_S`` (a dead shadow must not flood the log at the request rate)."""
        self.metrics.mirror_failed(deployment, reason)
        key = (deployment, reason)
        now = time.monotonic()
        last, count = self._mirror_logged.get(key, (-math.inf, 0))
        if now - last < MIRROR_LOG_EVERY_S:
            self._mirror_logged[key] = (last, count + 1)
            return
        self._mirror_logged[key] = (now, 0)
        more = f" ({count} more since the last report)" if count else ""
        log.warning(
            "endpoint %s: mirror copy to %s failed (%s): %s%s",
            self.name,
            deployment,
            reason,
            exc if reason != "internal" else f"{type(exc).__name__}: {exc}",
            more,
            exc_info=reason == "internal",
        )

    def _account(
        self,
        deployment: str,
        source: str,
        reply: Reply,
        latency: float,
        body: bytes,
        headers: list[tuple[bytes, bytes]],
        correlation: bytes,
        path: str,
    ) -> None:
        batch = reply.headers.get(b"cauce-batch-size")
        self.metrics.observe(
            deployment, source, latency, reply.status >= 500, int(batch) if batch else None
        )
        if reply.status == 200 and self.collector is not None and self.collector.wants(deployment):
            content_type = next(
                (v for k, v in headers if k == b"content-type"), b"application/json"
            )
            length = next((v for k, v in headers if k == _HEADER_LENGTH), None)
            answered_length = reply.headers.get(_HEADER_LENGTH)
            self.collector.record(
                Record(
                    deployment=deployment,
                    source=source,
                    model_version=reply.headers.get(b"cauce-model-version", b"").decode(),
                    correlation_id=correlation.decode("latin-1"),
                    timestamp_ms=int(time.time() * 1000),
                    latency_ms=latency,
                    request=body,
                    content_type=content_type.decode("latin-1"),
                    response=reply.body,
                    protocol="v2" if path.startswith("/v2/") else "invocations",
                    request_header_length=length.decode("latin-1") if length else None,
                    response_header_length=(
                        answered_length.decode("latin-1") if answered_length else None
                    ),
                )
            )

    async def _forward_get(self, scope: Scope, send: Send, path: str) -> None:
        """Model metadata and readiness come from a deployment that takes live traffic."""
        target = header(scope, b"cauce-deployment")
        deployment = target.decode("latin-1") if target else self._choose()
        self.endpoint.deployment(deployment)  # NotFound names the deployments
        upstream = self._upstream(deployment)
        if upstream is None:
            raise BackendError(f"deployment {deployment!r} is not running")
        try:
            reply = await upstream.request(b"GET", path.encode(), b"", [], timeout=5.0)
        except (UpstreamError, TimeoutError) as exc:
            raise BackendError(f"deployment {deployment!r} did not answer: {exc}") from None
        await respond(
            send,
            reply.status,
            reply.body,
            content_type=reply.headers.get(b"content-type", b"application/json"),
        )
