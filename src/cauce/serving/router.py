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
import contextlib
import json
import logging
import math
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cauce.errors import (
    BackendError,
    BadRequest,
    CauceError,
    NotFound,
    RateLimited,
    UpstreamTimeout,
)
from cauce.genai import openai_api as api
from cauce.serving.codec import HEADER_LENGTH
from cauce.serving.collector import Collector, GenAIRecord, Record
from cauce.serving.endpoints import Endpoint, get_endpoint
from cauce.serving.gateway import Cached, KeyRing, ResponseCache, presented_key, retry_after
from cauce.serving.http import (
    Receive,
    Scope,
    Send,
    disconnected,
    header,
    lifespan,
    openapi,
    read_body,
    respond,
    respond_error,
    respond_json,
)
from cauce.serving.metrics import RouterMetrics, store_windows
from cauce.serving.upstream import Opened, Reply, Upstream, UpstreamError
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
            self.metrics.count_collected(self.collector)
        self.healthy: dict[str, bool] = {}
        self._upstreams: dict[str, Upstream] = {}
        self._in_process: dict[str, tuple[Any, Any, Any]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._mirrors: set[asyncio.Task[None]] = set()
        self._mirror_logged: dict[tuple[str, str], tuple[float, int]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Started and stopped with the router: the local supervisor of deployment processes.
        self.on_start: list[Callable[[], Any]] = []
        self.on_stop: list[Callable[[], Any]] = []
        self._openapi = json.dumps(_openapi(endpoint)).encode()
        self.keys: KeyRing | None = None
        self.cache: ResponseCache | None = None
        self._created = int(time.time())
        self._configure_gateway()

    def _configure_gateway(self) -> None:
        """Keys and the response cache as the endpoint's spec says (on start and on change)."""
        spec = self.endpoint.spec
        wants_keys = spec.get("auth") == "api_key"
        if wants_keys and self.keys is None:
            self.keys = KeyRing(self.ws, self.name)
        elif not wants_keys:
            self.keys = None
        cache = spec.get("cache")
        if cache is None:
            self.cache = None
        elif (
            self.cache is None
            or self.cache.ttl != cache["ttl"] / 1000
            or self.cache.max_entries != cache["max_entries"]
        ):
            self.cache = ResponseCache(cache["ttl"], cache["max_entries"])

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reloading, health checks and stats flushing (inside the running loop)."""
        loop = asyncio.get_running_loop()
        if self.keys is not None:
            await asyncio.to_thread(self.keys.load)
        self._tasks = [
            loop.create_task(self._every(RELOAD_EVERY_S, self._reload)),
            loop.create_task(self._every(self.health_every, self._check_health)),
            loop.create_task(self._every(1.0, self._flush_stats)),
        ]
        if self.collector is not None:
            # The spans of the relays this process runs are stored by the collector's writer.
            from cauce.genai import tracing

            tracing.send_root_spans_to(self.collector.span, workspace=self.ws)
        for deployment in self.endpoint.deployments:  # built now, not on the first request
            if deployment.spec.get("runs_in") == "router":
                try:
                    self._in_router(deployment)
                except Exception as exc:  # its health check reports it; the others answer
                    log.warning("router %s: %s cannot start: %s", self.name, deployment.name, exc)
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
        for _, _, app in self._in_process.values():
            await app.close()
        if self.collector is not None:
            from cauce.genai import tracing

            tracing.send_root_spans_to(None, workspace=self.ws)
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
                await asyncio.to_thread(self.collector.configure, self.endpoint.deployments)
            self._configure_gateway()
            if self.keys is not None:
                await asyncio.to_thread(self.keys.load)

    async def _check_health(self) -> None:
        names = [d.name for d in self.endpoint.deployments]
        results = await asyncio.gather(*(self._ready(n) for n in names))
        self.healthy = dict(zip(names, results, strict=True))

    async def _ready(self, deployment: str) -> bool:
        upstream = self._upstream(deployment)
        if upstream is None:
            return False
        try:
            reply: Reply = await upstream.request(b"GET", b"/v2/health/ready", b"", [], timeout=2.0)
        except (UpstreamError, TimeoutError):
            return False
        return reply.status == 200

    async def _flush_stats(self) -> None:
        start, end, windows = self.metrics.drain()
        if windows:
            await asyncio.to_thread(
                store_windows, self.ws, self.name, self.endpoint.id, start, end, windows
            )
        if self.keys is not None:
            await asyncio.to_thread(self.keys.store)

    def _upstream(self, deployment: str) -> Any:
        """Where a deployment answers: its address (an :class:`Upstream`), or the router's
        own process for a deployment with ``runs_in: router``; None when it is not running."""
        found = next((d for d in self.endpoint.deployments if d.name == deployment), None)
        if found is not None and found.spec.get("runs_in") == "router":
            return self._in_router(found)
        url = self.addresses().get(deployment)
        if url is None:
            return None
        upstream = self._upstreams.get(deployment)
        if upstream is None or upstream.url != url:
            upstream = self._upstreams[deployment] = Upstream(url)
        return upstream

    def _in_router(self, deployment: Any) -> Any:
        """The deployment's app in this process, built once per version of it."""
        from cauce.serving.genai import build_genai_app
        from cauce.serving.inprocess import InProcess

        found = self._in_process.get(deployment.name)
        if found is not None and found[0] is deployment:  # the endpoint has not been re-read
            return found[2]
        fingerprint = (deployment.target_id, json.dumps(deployment.spec, sort_keys=True))
        if found is not None and found[1] == fingerprint:
            app = found[2]
        else:
            if found is not None:
                self._closing.add(asyncio.get_running_loop().create_task(found[2].close()))
            built = build_genai_app(deployment, self.endpoint.max_request_bytes, self.ws)
            app = InProcess(built, deployment.name)
        self._in_process[deployment.name] = (deployment, fingerprint, app)
        return app

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
            if scope["path"].startswith("/v1/"):
                await _openai_error(send, exc)
            else:
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
        elif path in _GENAI and method == "POST":
            await self._genai(scope, receive, send, path)
        elif method == "GET" and path == "/v1/models":
            await respond_json(send, 200, {"object": "list", "data": [self._model_card()]})
        elif method == "GET" and path.startswith("/v1/models/"):
            if path.removeprefix("/v1/models/") != self.name:
                raise _unknown_model(path.removeprefix("/v1/models/"), self.name)
            await respond_json(send, 200, self._model_card())
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
                (b"cauce-endpoint", self.name.encode()),
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
            if path.startswith(b"/v1/"):
                self._account_mirrored(deployment, reply, body, correlation, path, started)
                return
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

    def _account_mirrored(
        self,
        deployment: str,
        reply: Reply,
        body: bytes,
        correlation: bytes,
        path: bytes,
        started: float,
    ) -> None:
        streamed = reply.headers.get(b"content-type", b"").startswith(b"text/event-stream")
        summary = (
            api.stream_summary(reply.body)
            if streamed
            else api.Summary.decode(reply.headers.get(b"cauce-summary"))
        )
        call = _Call(
            path=path.decode(),
            operation="embeddings" if path == b"/v1/embeddings" else "chat",
            stream=streamed,
            body=body,
            correlation=correlation,
            key=None,
            started=started,
        )
        self._account_genai(
            call, deployment, "mirror", reply.status, reply.body, summary, None, None
        )

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

    # -- GenAI requests ----------------------------------------------------------------------

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": self._created, "owned_by": "cauce"}

    async def _genai(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """An OpenAI request: key and limits, cache, split or pin, fallbacks, stream relay,
        accounting."""
        started = time.perf_counter()
        key = None
        if self.keys is not None:
            key = self.keys.find(presented_key(scope["headers"]))
            key.admit()
        body = await read_body(scope, receive, self.endpoint.max_request_bytes)
        request = api.json_object(body)
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Field required", details={"field": "model"})
        target = header(scope, b"cauce-deployment")
        pinned = target.decode("latin-1") if target is not None else None
        if model != self.name:
            if not any(d.name == model for d in self.endpoint.deployments):
                raise _unknown_model(model, self.name)
            pinned = pinned or model
        if pinned is not None:
            self.endpoint.deployment(pinned)  # NotFound names the deployments
        correlation = (header(scope, b"x-request-id") or uuid.uuid4().hex.encode())[:128]
        headers = [(b"content-type", b"application/json"), (b"x-request-id", correlation)]
        session = header(scope, api.SESSION_HEADER)
        call = _Call(
            path=path,
            operation="embeddings" if path == "/v1/embeddings" else "chat",
            stream=request.get("stream") is True,
            body=body,
            correlation=correlation,
            key=key,
            started=started,
            session=api.session_of(session),
        )
        cache_key = None
        if self.cache is not None:
            cache_key = ResponseCache.key(path, pinned, request)
            hit = self.cache.get(cache_key)
            if hit is not None:
                await self._replay(send, hit, call)
                return
        deployment = pinned or self._choose()
        if pinned is None:
            self._maybe_mirror(path, body, [*headers, (api.MIRROR_HEADER, b"1")], correlation)
        if session is not None:  # the answer the caller sees is in its conversation
            headers = [*headers, (api.SESSION_HEADER, session)]
        answered, opened = await self._open(deployment, call, headers, pinned is not None)
        reply_headers = [(b"x-request-id", correlation), (b"cauce-deployment", answered.encode())]
        summary = api.Summary.decode(opened.headers.get(b"cauce-summary"))
        if summary is not None and summary.trace_id:  # what feedback on this answer names
            reply_headers.append((api.TRACE_HEADER, summary.trace_id.encode()))
        first_byte = (time.perf_counter() - started) * 1000
        if opened.body is not None:  # a whole answer, or an error
            await respond(
                send,
                opened.status,
                opened.body,
                content_type=opened.headers.get(b"content-type", b"application/json"),
                headers=reply_headers,
            )
            self._account_genai(
                call, answered, "live", opened.status, opened.body, summary, None, None
            )
            if cache_key is not None and opened.status == 200 and self.cache is not None:
                self._store_answer(cache_key, opened, answered, opened.body)
            return
        await self._relay(send, receive, opened, call, answered, reply_headers, first_byte, summary)
        if cache_key is not None and self.cache is not None and call.complete:
            self._store_answer(cache_key, opened, answered, call.data)

    async def _open(
        self, deployment: str, call: _Call, headers: list[tuple[bytes, bytes]], pinned: bool
    ) -> tuple[str, Opened]:
        """Open the answer of ``deployment``; on a 429, a 5xx, a timeout or no connection before
        its first byte, of its fallbacks in order (and, when it cannot be reached at all and is
        not pinned, of another healthy deployment)."""
        first = deployment
        spec = self.endpoint.deployment(deployment).spec
        order = [deployment]
        for name in spec.get("fallbacks", []):
            if not name.startswith("connections:/") and name not in order:
                order.append(name)
        timeout = self.endpoint.timeout_ms / 1000
        last_answer: tuple[str, Opened] | None = None
        last_error: CauceError | None = None
        tried: list[str] = []
        while order:
            name = order.pop(0)
            tried.append(name)
            upstream = self._upstream(name)
            began = time.perf_counter()
            try:
                if upstream is None:
                    raise UpstreamError(f"deployment {name!r} is not running")
                opened = await upstream.open(
                    b"POST", call.path.encode(), call.body, headers, timeout
                )
            except TimeoutError:
                last_error = UpstreamTimeout(
                    f"deployment {name!r} did not answer within {timeout:g} s"
                )
            except UpstreamError as exc:
                last_error = BackendError(f"deployment {name!r} could not answer: {exc}")
                if not order and not pinned:  # nowhere else named: any healthy deployment
                    order = [
                        n
                        for n, ok in self.healthy.items()
                        if ok and n not in tried and n in self._routable()
                    ][:1]
            else:
                if opened.status != 429 and opened.status < 500:
                    if name != first:
                        self.metrics.failed_over(first, name)
                    return name, opened
                last_answer = (name, opened)
                opened.close()
            self.metrics.observe(name, "live", (time.perf_counter() - began) * 1000, True, None)
        if last_answer is not None:
            if last_answer[0] != first:
                self.metrics.failed_over(first, last_answer[0])
            return last_answer
        assert last_error is not None
        raise last_error

    async def _relay(
        self,
        send: Send,
        receive: Receive,
        opened: Opened,
        call: _Call,
        deployment: str,
        headers: list[tuple[bytes, bytes]],
        first_byte: float,
        summary: api.Summary | None,
    ) -> None:
        """Pass a stream on as it comes; stop at once when the caller goes."""
        await send(
            {
                "type": "http.response.start",
                "status": opened.status,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    *headers,
                ],
            }
        )
        parts: list[bytes] = []

        async def pump() -> None:
            async for chunk in opened.chunks():
                parts.append(chunk)
                if api.SUMMARY_COMMENT in chunk:  # the last piece
                    chunk = api.for_caller(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

        loop = asyncio.get_running_loop()
        relay = loop.create_task(pump())
        watcher = loop.create_task(disconnected(receive))
        await asyncio.wait((relay, watcher), return_when=asyncio.FIRST_COMPLETED)
        error: str | None = None
        abandoned = False
        if not relay.done():
            relay.cancel()
            abandoned = True
        else:
            watcher.cancel()
            failure = relay.exception()
            if isinstance(failure, UpstreamError):
                error = "upstream_disconnected"
                broke = BackendError(
                    f"deployment {deployment!r} broke off the answer",
                    details={"code": "upstream_disconnected"},
                )
                with contextlib.suppress(Exception):
                    await send(
                        {
                            "type": "http.response.body",
                            "body": api.error_event(broke),
                            "more_body": True,
                        }
                    )
            elif failure is not None:  # the caller's connection failed under us: it has gone
                abandoned = True
        opened.close()
        if not abandoned:
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        data = b"".join(parts)
        final = api.stream_summary(data)
        if final is not None:
            error = error or final.error
        call.complete = final is not None and error is None and not abandoned
        call.data = data
        finished = final is not None and final.completion_tokens is not None
        self._account_genai(
            call,
            deployment,
            "live",
            200,  # sent before the answer; how it ended is in ``error`` and ``abandoned``
            data,
            final or summary,
            None if finished else api.stream_progress(data),
            first_byte,
            abandoned=abandoned,
            error=error,
        )

    async def _replay(self, send: Send, hit: Cached, call: _Call) -> None:
        """A cached answer, byte for byte (a stream as one piece)."""
        await respond(
            send,
            hit.status,
            hit.body,
            content_type=hit.content_type,
            headers=[
                (b"x-request-id", call.correlation),
                (b"cauce-deployment", hit.deployment.encode()),
                (b"cauce-cache", b"hit"),
            ],
        )
        self._account_genai(
            call,
            hit.deployment,
            "live",
            hit.status,
            hit.body,
            api.Summary.decode(hit.summary),
            None,
            None,
            cached=True,
        )

    def _store_answer(self, key: str, opened: Opened, deployment: str, body: bytes) -> None:
        assert self.cache is not None
        self.cache.put(
            key,
            Cached(
                expires=self.cache.expires(),
                status=opened.status,
                content_type=opened.headers.get(b"content-type", b"application/json"),
                body=body if opened.body is not None else api.for_caller(body),
                deployment=deployment,
                target=opened.headers.get(b"cauce-model-version", b"").decode(),
                summary=opened.headers.get(b"cauce-summary")
                if opened.body is not None
                else (api.stream_summary(body) or api.Summary()).encode(),
            ),
        )

    def _account_genai(
        self,
        call: _Call,
        deployment: str,
        source: str,
        status: int,
        response: bytes,
        summary: api.Summary | None,
        progress: tuple[int | None, int | None] | None,
        first_byte: float | None,
        *,
        abandoned: bool = False,
        cached: bool = False,
        error: str | None = None,
    ) -> None:
        """Metrics, the key's spending and the collector's record of one GenAI answer."""
        latency = (time.perf_counter() - call.started) * 1000
        self.metrics.observe(deployment, source, latency, status >= 500, None)
        tokens = (0, 0)
        if summary is not None and summary.completion_tokens is not None:
            tokens = (summary.prompt_tokens or 0, summary.completion_tokens or 0)
        elif progress is not None:
            tokens = (progress[0] or 0, progress[1] or 0)
        if source == "live" and call.key is not None and self.keys is not None and not cached:
            cost = summary.cost if summary is not None and summary.cost else 0.0
            self.keys.spend(call.key, tokens[0], tokens[1], cost)
        if self.collector is None or not self.collector.genai(deployment):
            return
        try:
            target = self.endpoint.deployment(deployment).target
        except NotFound:  # deleted since: the record still counts
            target = ""
        self.collector.record(
            GenAIRecord(
                deployment=deployment,
                source=source,
                target=target,
                correlation_id=call.correlation.decode("latin-1"),
                # When it was answered, as a scoring record: a slow answer still falls in the
                # analysis interval that is judged after it, not in one judged while it ran.
                timestamp_ms=int(time.time() * 1000),
                latency_ms=latency,
                ttft_ms=first_byte if call.stream else None,
                operation=call.operation,
                key=call.key.name if call.key is not None else None,
                status=status,
                stream=call.stream,
                abandoned=abandoned,
                cached=cached,
                request=call.body,
                response=response,
                summary=summary,
                progress=progress,
                error=error,
                session=call.session,
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


_GENAI = ("/v1/chat/completions", "/v1/embeddings")


@dataclass
class _Call:
    """One GenAI request as the router handles it."""

    path: str
    operation: str
    stream: bool
    body: bytes
    correlation: bytes
    key: Any
    started: float
    session: str | None = None
    complete: bool = False
    data: bytes = b""


def _unknown_model(model: str, endpoint: str) -> NotFound:
    return NotFound(
        f"The model {model!r} does not exist; this endpoint answers for {endpoint!r}",
        details={"field": "model", "code": "model_not_found"},
    )


async def _openai_error(send: Send, error: CauceError) -> None:
    status, body = api.error_body(error)
    headers = []
    if isinstance(error, RateLimited):
        headers.append((b"retry-after", retry_after(error.retry_after)))
    await respond(send, status, json.dumps(body).encode(), headers=headers)


def _openapi(endpoint: str) -> dict[str, Any]:
    """The router's API: the scoring protocols and OpenAI's."""
    document = openapi(f"Cauce endpoint {endpoint}")
    paths, schemas = api.openapi_paths()
    document["paths"].update(paths)
    document["components"]["schemas"].update(schemas)
    return document
