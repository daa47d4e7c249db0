"""GenAI deployments: a worker that answers OpenAI's API for what the deployment serves.

A deployment serves a registered LLM (a GGUF model, run in the worker), a flow version, a
prompt version sent through a connection, or a connection alone (its chat model, proxied):
a :class:`~cauce.serving.genai_targets.Target` each. LLMs and flows run on the worker's
threads; connections are relayed on its event loop.

- ``POST /v1/chat/completions``: whole answers, or server-sent events (``data: [DONE]`` last;
  with ``stream_options.include_usage`` a usage chunk before it). The response head waits for
  the first token, so an upstream that fails before it is an HTTP error the router can fall
  back on, not a broken stream.
- ``POST /v1/embeddings``: through the connection; deployments without one embed with the
  offline MiniLM (the indexes' default model).
- ``GET /v1/models``: the endpoint's name, which is the model id callers send.

A prompt deployment renders the prompt's messages with the request's ``variables`` (an extra
body field) and sends the conversation after them; a prompt with exactly one variable left
without a value takes the last user message's text instead (that message is then not sent
twice). A flow deployment runs one line the same way (``variables``, or the last user message
as its only input) and answers with its output ``answer``, or its only output; the flow's
output ``contexts`` (retrieved texts), when it has one, is reported to the collector.
Flows answer whole: a streamed request gets the answer in one chunk when the line is done.

Safety filters (``safety:`` in the spec) run here, on the input before the target sees it and
on the output before the caller does; a blocked request is a 400 with code ``content_filter``
(as Azure OpenAI answers), a blocked answer ends with ``finish_reason: content_filter``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from cauce.errors import BadRequest, CauceError, NotFound
from cauce.genai import openai_api as api
from cauce.serving.genai_targets import Delta, Target, load_target
from cauce.serving.http import Receive, Scope, Send, disconnected, lifespan, read_body
from cauce.workspace import Workspace

log = logging.getLogger("cauce.genai-worker")
# LLMs and flows run here; a flow's line mostly waits on the servers its nodes call.
BLOCKING_THREADS = 64


# -- the worker's API -------------------------------------------------------------------------


@dataclass
class Answered:
    """An answer before it is written: a whole ``body``, or a stream's ``events``."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    events: AsyncGenerator[bytes, None] | None = None


@dataclass
class GenAIApp:
    """OpenAI's API for one GenAI deployment: :meth:`handle` answers a request; the app is
    also an ASGI application (a worker's), writing what :meth:`handle` answers."""

    endpoint: str
    deployment: str
    target: Target
    max_request_bytes: int
    safety: Any = None  # a SafetyPolicy
    ws: Workspace | None = None
    _pool: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="cauce-genai")
        self._headers = [
            (b"cauce-deployment", self.deployment.encode()),
            (b"cauce-model-version", self.target.uri.encode()),
        ]
        self._created = int(time.time())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send, shutdown=self.close)
            return
        if scope["type"] != "http":
            return
        try:
            body = await read_body(scope, receive, self.max_request_bytes)
        except CauceError as exc:
            answered = self._error(exc)
        else:
            answered = await self.handle(scope["method"], scope["path"], body, scope["headers"])
        await _write(send, receive, answered)

    async def handle(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> Answered:
        """The answer to one request (errors in OpenAI's shape); a stream's answer comes back
        once its first piece is there, so that a failure before it is an HTTP error."""
        try:
            return await self._route(method, path, body, headers)
        except CauceError as exc:
            return self._error(exc)
        except Exception as exc:  # a bug, not the caller's fault: logged, answered in JSON
            log.exception("%s/%s: internal error on %s", self.endpoint, self.deployment, path)
            return self._error(CauceError(f"internal error: {type(exc).__name__}"))

    async def close(self) -> None:
        """Let go of the target's connections and threads (the worker is stopping)."""
        await self.target.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _error(self, error: CauceError, summary: api.Summary | None = None) -> Answered:
        status, body = api.error_body(error)
        headers = list(self._headers)
        if summary is not None:
            headers.append((b"cauce-summary", summary.encode()))
        return self._json(status, json.dumps(body).encode(), headers)

    def _json(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answered:
        return Answered(status, [(b"content-type", b"application/json"), *headers], body)

    async def _route(
        self, method: str, path: str, body: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> Answered:
        if method == "POST" and path == "/v1/chat/completions":
            request = api.chat_request(body)
            with _belonging(headers, request.user):
                return await self._chat(request)
        if method == "POST" and path == "/v1/embeddings":
            embeddings = api.embeddings_request(body)
            with _belonging(headers, embeddings.user):
                return await self._embeddings(embeddings)
        if method == "GET" and path in ("/v1/models", f"/v1/models/{self.endpoint}"):
            card = {
                "id": self.endpoint,
                "object": "model",
                "created": self._created,
                "owned_by": "cauce",
            }
            reply = card if path != "/v1/models" else {"object": "list", "data": [card]}
            return self._json(200, json.dumps(reply).encode(), self._headers)
        if method == "GET" and path.startswith("/v1/models/"):
            raise _unknown_model(path.removeprefix("/v1/models/"), self.endpoint)
        if method == "GET" and path in ("/ping", "/health", "/v2/health/live", "/v2/health/ready"):
            return self._json(200, b'{"ready": true}', self._headers)
        raise NotFound(f"no such path: {method} {path}", details={"field": "path"})

    def _check_model(self, model: str) -> None:
        if model not in (self.endpoint, self.deployment):
            raise _unknown_model(model, self.endpoint)

    # -- chat ---------------------------------------------------------------------------------

    async def _chat(self, request: api.ChatRequest) -> Answered:
        self._check_model(request.model)
        messages = request.dicts()
        summary = api.Summary(safety=[])
        canary: str | None = None
        if self.safety is not None:
            verdict = self.safety.check_input(messages)
            summary.safety = list(verdict.decisions)
            if verdict.blocked:
                summary.finish_reason = "content_filter"
                return self._error(_filtered(verdict.decisions), summary)
            messages = verdict.messages
            if self.safety.wants_canary:
                from cauce.genai.safety.canary import new_canary, with_canary

                canary = new_canary()
                messages = with_canary(messages, canary)
        if request.stream:
            return await self._stream(request, messages, summary, canary)
        answer = await self.target.answer(request, messages, self._pool)
        text, finish = answer.text, answer.finish_reason
        if self.safety is not None:
            verdict = self.safety.check_output(text, canary=canary)
            summary.safety = [*(summary.safety or []), *verdict.decisions]
            text = verdict.text
            if verdict.blocked:
                finish = "content_filter"
        summary.prompt_tokens = answer.prompt_tokens
        summary.completion_tokens = answer.completion_tokens
        summary.cost, summary.finish_reason, summary.model = answer.cost, finish, answer.model
        summary.trace_id, summary.contexts = answer.trace_id, answer.contexts
        summary.usage_estimated = answer.estimated
        if answer.raw is not None and text == answer.text and finish == answer.finish_reason:
            reply = answer.raw  # the upstream's answer, as it came
        else:
            completion = api.completion(
                id=api.completion_id(),
                model=answer.model,
                text=text,
                finish_reason=finish,
                prompt_tokens=answer.prompt_tokens or 0,
                completion_tokens=answer.completion_tokens or 0,
            )
            reply = json.dumps(completion, ensure_ascii=False).encode()
        return self._json(200, reply, [*self._headers, (b"cauce-summary", summary.encode())])

    async def _stream(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        summary: api.Summary,
        canary: str | None,
    ) -> Answered:
        gone = threading.Event()
        pieces = self.target.pieces(request, messages, self._pool, gone)
        try:
            first = await anext(pieces)
        except CauceError as exc:  # nothing sent yet: an HTTP error, a fallback for the router
            gone.set()
            return self._error(exc, summary)
        except BaseException:  # cancelled (the caller's timeout): the target stops too
            gone.set()
            raise
        summary.trace_id = first.trace_id
        guard = self.safety.output_guard(canary=canary) if self.safety is not None else None
        writer = api.ChunkWriter(api.completion_id(), self.target.model, request.include_usage)
        headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            *self._headers,
            # What is known before the answer (the input's safety decisions): the router
            # keeps it for a stream that never reaches its end.
            (b"cauce-summary", summary.encode()),
        ]
        events = self._events(first, pieces, writer, guard, summary, gone)
        return Answered(200, headers, events=events)

    async def _events(
        self,
        item: Delta,
        pieces: AsyncGenerator[Delta, None],
        writer: api.ChunkWriter,
        guard: Any,
        summary: api.Summary,
        gone: threading.Event,
    ) -> AsyncGenerator[bytes, None]:
        """The stream's events, each piece's as it comes, then the summary and ``[DONE]`` (an
        error event instead, when the answer broke off, as OpenAI's streams end)."""
        try:
            progress: tuple[int | None, int | None] = (item.prompt_tokens, 0)
            if not self.target.relays:
                yield writer.event({"role": "assistant", "content": ""}, progress=progress)
            blocked = False
            tail = b""  # the last piece's events, sent with the summary in one write
            while True:
                progress = (item.prompt_tokens, item.completion_tokens)
                summary.trace_id = item.trace_id or summary.trace_id
                text = item.text
                if guard is not None and not blocked:
                    text = guard.feed(text)
                    if item.finish_reason is not None:
                        text += guard.finish()
                    blocked = guard.blocked
                out = b""
                if item.raw is not None and text == item.text and not blocked:
                    out = api.usage_comment(*progress) + item.raw
                elif text:
                    out = _rewritten(item, text, writer, progress)
                if item.finish_reason is not None or blocked:
                    finish = "content_filter" if blocked else item.finish_reason
                    if blocked and item.finish_reason is None:
                        gone.set()  # stop the model: nothing more of this answer goes out
                    summary.prompt_tokens, summary.completion_tokens = progress
                    summary.cost = item.cost
                    summary.usage_estimated = item.estimated
                    summary.finish_reason, summary.model = finish, self.target.model
                    summary.contexts = item.contexts
                    if guard is not None:
                        summary.safety = [*(summary.safety or []), *guard.decisions]
                    if item.raw is None or blocked:
                        out += writer.event({}, finish, progress=progress)
                    if writer.include_usage:
                        out += writer.usage_event(progress[0] or 0, progress[1] or 0)
                    tail = out
                    break
                if out:
                    yield out
                try:
                    item = await anext(pieces)
                except StopAsyncIteration:
                    break
                except CauceError as error:
                    summary.finish_reason = None
                    summary.prompt_tokens, summary.completion_tokens = progress
                    summary.usage_estimated = progress[0] is None
                    summary.error = api.error_body(error)[1]["error"]["code"]
                    tail = api.error_event(error)
                    break
            yield tail + summary.comment() + (api.DONE if summary.error is None else b"")
        finally:
            gone.set()
            await pieces.aclose()

    # -- embeddings ---------------------------------------------------------------------------

    async def _embeddings(self, request: api.EmbeddingsRequest) -> Answered:
        self._check_model(request.model)
        vectors, tokens, cost, model = await self.target.embed(request.texts, self._pool)
        if request.dimensions is not None:
            vectors = [v[: request.dimensions] for v in vectors]
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(v, request.encoding_format)}
            for i, v in enumerate(vectors)
        ]
        reply = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        summary = api.Summary(prompt_tokens=tokens, completion_tokens=0, cost=cost, model=model)
        headers = [*self._headers, (b"cauce-summary", summary.encode())]
        return self._json(200, json.dumps(reply).encode(), headers)


def _belonging(
    headers: Sequence[tuple[bytes, bytes]], user: str | None
) -> AbstractContextManager[None]:
    """The session (the ``cauce-session`` header) and the user (the request's ``user``, cut
    to its longest) that the traces of a request belong to; none for a mirrored copy."""
    from cauce.genai import tracing

    if any(k.lower() == api.MIRROR_HEADER for k, _ in headers):
        return contextlib.nullcontext()
    session = api.session_of(next((v for k, v in headers if k.lower() == api.SESSION_HEADER), None))
    user_id = api.user_of(user)
    if session is None and user_id is None:
        return contextlib.nullcontext()
    return tracing.session(session, user_id=user_id)


async def _write(send: Send, receive: Receive, answered: Answered) -> None:
    """Write an answer; a stream's events as they come, stopped at once when the caller goes."""
    events = answered.events
    if events is None:
        headers = [(b"content-length", str(len(answered.body)).encode()), *answered.headers]
        await send({"type": "http.response.start", "status": answered.status, "headers": headers})
        await send({"type": "http.response.body", "body": answered.body})
        return
    await send(
        {"type": "http.response.start", "status": answered.status, "headers": answered.headers}
    )

    async def pump() -> None:
        async for data in events:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    loop = asyncio.get_running_loop()
    relay = loop.create_task(pump())
    watcher = loop.create_task(disconnected(receive))
    await asyncio.wait((relay, watcher), return_when=asyncio.FIRST_COMPLETED)
    watcher.cancel()
    relay.cancel()  # the caller has gone (a no-op when the stream is done)
    await asyncio.wait((relay,))
    await events.aclose()
    failure = None if relay.cancelled() else relay.exception()
    if failure is not None:
        raise failure


def _rewritten(
    item: Delta, text: str, writer: api.ChunkWriter, progress: tuple[int | None, int | None]
) -> bytes:
    """A piece's event with its text changed by a filter: the upstream's event, rewritten, or
    one of Cauce's own."""
    if item.event is None:
        return writer.event({"content": text}, progress=progress)
    event = dict(item.event)
    choice = dict(event["choices"][0])
    choice["delta"] = {**(choice.get("delta") or {}), "content": text}
    event["choices"] = [choice, *event["choices"][1:]]
    if not writer.include_usage:
        event.pop("usage", None)
    body = json.dumps(event, ensure_ascii=False).encode()
    return api.usage_comment(*progress) + b"data: " + body + b"\n\n"


def _encoded(vector: list[float], encoding: str) -> Any:
    if encoding == "float":
        return vector
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def _filtered(decisions: list[dict[str, Any]]) -> BadRequest:
    why = "; ".join(
        f"{d['filter']}: {', '.join(map(str, d.get('reasons') or [])) or 'triggered'}"
        for d in decisions
        if d.get("action") == "block" and d.get("triggered", True)
    )
    return BadRequest(
        f"the request was blocked by this deployment's safety filters ({why})",
        details={"field": "messages", "code": "content_filter"},
    )


def _unknown_model(model: str, endpoint: str) -> NotFound:
    return NotFound(
        f"The model {model!r} does not exist; this endpoint answers for {endpoint!r}",
        details={"field": "model", "code": "model_not_found"},
    )


# -- building one -----------------------------------------------------------------------------


def build_genai_app(deployment: Any, max_request_bytes: int, ws: Workspace) -> GenAIApp:
    """Load what a GenAI deployment serves and wrap it in OpenAI's API."""
    target = load_target(deployment, ws)
    safety = None
    if deployment.spec.get("safety"):
        from cauce.genai.safety.filters import SafetyPolicy, SafetySpec

        safety = SafetyPolicy.from_spec(SafetySpec.model_validate(deployment.spec["safety"]))
    return GenAIApp(
        endpoint=deployment.endpoint,
        deployment=deployment.name,
        target=target,
        max_request_bytes=max_request_bytes,
        safety=safety,
        ws=ws,
    )
