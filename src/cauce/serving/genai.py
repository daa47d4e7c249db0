"""GenAI deployments: a worker that answers OpenAI's API for what the deployment serves.

A deployment serves a registered LLM (a GGUF model, run in the worker), a flow version, a
prompt version sent through a connection, or a connection alone (its chat model, proxied). Each
is a :class:`Target` with one blocking interface, run on the worker's threads:

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
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cauce.errors import BadRequest, CauceError, InvalidInput, LLMError, NotFound
from cauce.genai import openai_api as api
from cauce.serving.http import Receive, Scope, Send, lifespan, read_body
from cauce.workspace import Workspace

log = logging.getLogger("cauce.genai-worker")
BLOCKING_THREADS = 256  # streams wait on upstream servers: threads, not cores


# -- what a deployment serves -----------------------------------------------------------------


@dataclass
class Answer:
    """A whole answer."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    model: str
    trace_id: str | None = None
    contexts: list[str] | None = None
    estimated: bool = False


@dataclass
class Delta:
    """A piece of a streamed answer, with the tokens counted up to it; the last one has
    ``finish_reason`` and the final usage."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    cost: float | None = None
    estimated: bool = False
    contexts: list[str] | None = None


class Target:
    """What a deployment serves, behind one blocking interface."""

    uri: str
    model: str  # the model name answers carry

    def chat(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Answer:
        """A whole answer."""
        raise NotImplementedError

    def stream(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Iterator[Delta]:
        """The answer piece by piece; a failure before the first piece raises from the first
        ``next()``."""
        answer = self.chat(request, messages)
        yield Delta(
            answer.text,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.finish_reason,
            answer.cost,
            answer.estimated,
            answer.contexts,
        )

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int, float | None, str]:
        """Vectors, prompt tokens, cost and the model that embedded them."""
        return _minilm_embed(texts)


def _parameters(request: api.ChatRequest, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sampling parameters of a request over a prompt's defaults."""
    found = {k: v for k, v in (defaults or {}).items() if v is not None and k != "model"}
    for name in ("temperature", "top_p", "stop", "seed", "response_format"):
        value = getattr(request, name)
        if value is not None:
            found[name] = value
    if request.limit() is not None:
        found["max_tokens"] = request.limit()
    return found


class LLMTarget(Target):
    """A registered GGUF model, run in this worker (one answer at a time)."""

    def __init__(self, llm: Any, uri: str, name: str, price: tuple[float, float] | None) -> None:
        self.llm, self.uri, self.model, self.price = llm, uri, name, price

    def _settings(self, request: api.ChatRequest) -> dict[str, Any]:
        if request.tools:
            raise BadRequest("this model does not call tools", details={"field": "tools"})
        found = _parameters(request)
        found.setdefault("temperature", api.OPENAI_TEMPERATURE)
        return found

    def _cost(self, prompt: int, completion: int) -> float | None:
        if self.price is None:
            return None
        return (prompt * self.price[0] + completion * self.price[1]) / 1_000_000

    def stream(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Iterator[Delta]:
        settings = self._settings(request)
        prompt = self.llm.count_tokens(messages)
        if prompt >= self.llm.context_length:
            raise BadRequest(
                f"the prompt takes {prompt} tokens; {self.model} reads at most "
                f"{self.llm.context_length} (prompt and answer together)",
                details={"field": "messages", "code": "context_length_exceeded"},
            )
        chunks = self.llm.stream(messages, **settings)
        try:
            for chunk in chunks:
                if chunk.usage is not None:
                    usage = chunk.usage
                    yield Delta(
                        chunk.text,
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        chunk.finish_reason,
                        self._cost(usage.prompt_tokens, usage.completion_tokens),
                    )
                else:
                    yield Delta(chunk.text, prompt, chunk.sampled)
        finally:
            chunks.close()  # frees the model at once when the caller has gone

    def chat(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Answer:
        parts: list[str] = []
        last = Delta("")
        for delta in self.stream(request, messages):
            parts.append(delta.text)
            last = delta
        return Answer(
            "".join(parts),
            last.finish_reason,
            last.prompt_tokens,
            last.completion_tokens,
            last.cost,
            self.model,
        )


class ConnectionTarget(Target):
    """An OpenAI-compatible server through a connection, with connections to fall back on."""

    def __init__(self, clients: list[Any], model: str | None, uri: str) -> None:
        self.clients = clients  # the connection's LLMClient first, then its fallbacks
        self.upstream_model = model
        self.uri = uri
        self.model = model or clients[0].spec.models.chat or clients[0].name

    def _params(self, request: api.ChatRequest, defaults: dict[str, Any] | None = None) -> Any:
        if request.tools:
            raise BadRequest("this deployment does not pass tools on", details={"field": "tools"})
        return _parameters(request, defaults)

    def _each(self) -> Iterator[Any]:
        """Clients in order; an LLMError moves to the next, the last one's is raised."""
        yield from self.clients

    def chat(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        defaults: dict[str, Any] | None = None,
    ) -> Answer:
        params = self._params(request, defaults)
        error: LLMError | None = None
        for client in self.clients:
            try:
                result = client.chat(messages, model=self._model(client), **params)
            except LLMError as exc:
                error = exc
                log.warning("connection %s failed, trying the next: %s", client.name, exc)
                continue
            usage = result.usage
            return Answer(
                result.text,
                result.finish_reason,
                usage.input_tokens if usage else None,
                usage.output_tokens if usage else None,
                result.cost,
                result.model,
            )
        assert error is not None
        raise error

    def _model(self, client: Any) -> str | None:
        return self.upstream_model if client is self.clients[0] else None

    def stream(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        defaults: dict[str, Any] | None = None,
    ) -> Iterator[Delta]:
        params = self._params(request, defaults)
        error: LLMError | None = None
        for client in self.clients:
            try:
                stream = client.stream(messages, model=self._model(client), **params)
                pieces = iter(stream)
                first = next(pieces, None)  # a failure before the first token falls back
            except LLMError as exc:
                error = exc
                log.warning("connection %s failed, trying the next: %s", client.name, exc)
                continue
            yield from self._deltas(stream, pieces, first)
            return
        assert error is not None
        raise error

    @staticmethod
    def _deltas(stream: Any, pieces: Iterator[str], first: str | None) -> Iterator[Delta]:
        # Until the server's usage chunk, the answer's tokens are counted as the pieces it
        # sent (one token each, as OpenAI streams): an estimate, marked as such.
        count = 0
        try:
            if first is not None:
                count += 1
                yield Delta(first, None, count, estimated=True)
            for piece in pieces:
                count += 1
                yield Delta(piece, None, count, estimated=True)
        finally:
            pieces.close()  # type: ignore[attr-defined]
        result = stream.result
        if result.finish_reason is None:  # OpenAI's streams always end with one
            raise LLMError(f"{stream._client.name}: the stream ended before the answer did")
        usage = result.usage
        yield Delta(
            "",
            usage.input_tokens if usage else None,
            usage.output_tokens if usage else count,
            result.finish_reason,
            result.cost,
            estimated=usage is None,
        )

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int, float | None, str]:
        result = self.clients[0].embed(texts)
        tokens = result.usage.input_tokens if result.usage else 0
        return result.vectors, tokens, result.cost, result.model


class PromptTarget(Target):
    """A prompt version rendered, then sent through a connection."""

    def __init__(self, version: Any, connection: ConnectionTarget) -> None:
        self.version = version
        self.connection = connection
        self.uri = version.uri
        parameters = version.model_parameters
        connection.upstream_model = connection.upstream_model or parameters.get("model")
        self.model = connection.upstream_model or connection.model
        self.defaults = parameters

    def conversation(
        self, request: api.ChatRequest, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The prompt's messages, rendered, then the request's."""
        values = dict(_variables(request))
        missing = [
            name
            for name, spec in self.version.variables.items()
            if name not in values and spec.get("default") is None
        ]
        rest = list(messages)
        if len(missing) == 1:
            at = _last_user(rest)
            if at is not None:
                values[missing[0]] = api.message_text(rest.pop(at))
        try:
            rendered = self.version.render(**values)
        except InvalidInput as exc:
            raise BadRequest(str(exc), details={"field": "variables"}) from None
        return [*rendered, *rest]

    def chat(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Answer:
        answer = self.connection.chat(request, self.conversation(request, messages), self.defaults)
        return answer

    def stream(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Iterator[Delta]:
        return self.connection.stream(request, self.conversation(request, messages), self.defaults)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int, float | None, str]:
        return self.connection.embed(texts)


class FlowTarget(Target):
    """A flow version; one request runs one line."""

    def __init__(self, flow: Any, ws: Workspace) -> None:
        self.flow, self.ws = flow, ws
        self.uri = flow.uri
        self.model = flow.name

    def _inputs(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
        values = dict(_variables(request))
        names = self.flow.input_names()
        missing = [n for n in names if n not in values]
        if len(missing) == 1:
            at = _last_user(messages)
            if at is None:
                raise BadRequest(
                    f"flow {self.flow.name!r} takes {missing[0]!r}: send a user message or "
                    "variables",
                    details={"field": "messages"},
                )
            values[missing[0]] = api.message_text(messages[at])
        return values

    def chat(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Answer:
        line = self.flow.run(self._inputs(request, messages), workspace=self.ws)
        if line.status != "ok":
            raise LLMError(f"flow {self.flow.uri} failed: {line.error}")
        outputs = line.outputs
        if "answer" in outputs:
            answer = outputs["answer"]
        elif len(outputs) == 1:
            answer = next(iter(outputs.values()))
        else:
            answer = outputs
        contexts = outputs.get("contexts")
        return Answer(
            answer if isinstance(answer, str) else json.dumps(answer, default=str),
            "stop",
            line.input_tokens,
            line.output_tokens,
            line.cost,
            self.flow.name,
            trace_id=line.trace_id,
            contexts=[_context_text(c) for c in contexts] if isinstance(contexts, list) else None,
        )


def _context_text(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("text", json.dumps(item, default=str)))
    return str(item)


def _variables(request: api.ChatRequest) -> dict[str, Any]:
    extra = request.model_extra or {}
    values = extra.get("variables", {})
    if not isinstance(values, dict):
        raise BadRequest("variables must be an object", details={"field": "variables"})
    return values


def _last_user(messages: list[dict[str, Any]]) -> int | None:
    for at in range(len(messages) - 1, -1, -1):
        if messages[at].get("role") == "user":
            return at
    return None


def _minilm_embed(texts: list[str]) -> tuple[list[list[float]], int, float | None, str]:
    from cauce.genai.indexes.embed import count_minilm_tokens

    embedder = _embedder()
    vectors = embedder.embed(texts)
    return vectors.tolist(), count_minilm_tokens(embedder, texts), None, embedder.model_id


@functools.cache
def _embedder() -> Any:
    from cauce.genai.indexes.embed import MiniLMEmbedder

    return MiniLMEmbedder()


# -- the worker's API -------------------------------------------------------------------------


@dataclass
class GenAIApp:
    """OpenAI's API for one GenAI deployment (ASGI)."""

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
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except CauceError as exc:
            await self._error(send, exc)
        except Exception as exc:  # a bug, not the caller's fault: logged, answered in JSON
            log.exception(
                "%s/%s: internal error on %s", self.endpoint, self.deployment, scope["path"]
            )
            await self._error(send, CauceError(f"internal error: {type(exc).__name__}"))

    async def _error(
        self, send: Send, error: CauceError, summary: api.Summary | None = None
    ) -> None:
        status, body = api.error_body(error)
        headers = list(self._headers)
        if summary is not None:
            headers.append((b"cauce-summary", summary.encode()))
        await _respond(send, status, json.dumps(body).encode(), headers)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/v1/chat/completions":
            await self._chat(scope, receive, send)
        elif method == "POST" and path == "/v1/embeddings":
            await self._embeddings(scope, receive, send)
        elif method == "GET" and path in ("/v1/models", f"/v1/models/{self.endpoint}"):
            card = {
                "id": self.endpoint,
                "object": "model",
                "created": self._created,
                "owned_by": "cauce",
            }
            body = card if path != "/v1/models" else {"object": "list", "data": [card]}
            await _respond(send, 200, json.dumps(body).encode(), self._headers)
        elif method == "GET" and path.startswith("/v1/models/"):
            raise _unknown_model(path.removeprefix("/v1/models/"), self.endpoint)
        elif method == "GET" and path in (
            "/ping",
            "/health",
            "/v2/health/live",
            "/v2/health/ready",
        ):
            await _respond(send, 200, b'{"ready": true}', self._headers)
        else:
            raise NotFound(f"no such path: {method} {path}", details={"field": "path"})

    def _check_model(self, model: str) -> None:
        if model not in (self.endpoint, self.deployment):
            raise _unknown_model(model, self.endpoint)

    # -- chat ---------------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, self.max_request_bytes)
        request = api.chat_request(body)
        self._check_model(request.model)
        messages = request.dicts()
        summary = api.Summary(safety=[])
        canary: str | None = None
        if self.safety is not None:
            verdict = self.safety.check_input(messages)
            summary.safety = list(verdict.decisions)
            if verdict.blocked:
                summary.finish_reason = "content_filter"
                await self._error(send, _filtered(verdict.decisions), summary)
                return
            messages = verdict.messages
            if self.safety.wants_canary:
                from cauce.genai.safety.canary import new_canary, with_canary

                canary = new_canary()
                messages = with_canary(messages, canary)
        if request.stream:
            await self._stream(request, messages, summary, canary, receive, send)
            return
        answer = await self._blocking(self._traced, request, messages)
        text, finish = answer.text, answer.finish_reason
        if self.safety is not None:
            verdict = self.safety.check_output(text, canary=canary)
            summary.safety = [*(summary.safety or []), *verdict.decisions]
            text = verdict.text
            if verdict.blocked:
                finish = "content_filter"
        summary.prompt_tokens, summary.completion_tokens = (
            answer.prompt_tokens,
            answer.completion_tokens,
        )
        summary.cost, summary.finish_reason, summary.model = answer.cost, finish, answer.model
        summary.trace_id, summary.contexts = answer.trace_id, answer.contexts
        summary.usage_estimated = answer.estimated
        reply = api.completion(
            id=api.completion_id(),
            model=answer.model,
            text=text,
            finish_reason=finish,
            prompt_tokens=answer.prompt_tokens or 0,
            completion_tokens=answer.completion_tokens or 0,
        )
        headers = [*self._headers, (b"cauce-summary", summary.encode())]
        await _respond(send, 200, json.dumps(reply, ensure_ascii=False).encode(), headers)

    def _traced(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Answer:
        """The target's answer inside a trace of its own, unless the target makes one (flows)."""
        if self.ws is None or isinstance(self.target, FlowTarget):
            return self.target.chat(request, messages)
        from cauce.genai import tracing

        with tracing.span(
            f"chat {self.endpoint}",
            operation="chat",
            kind="server",
            attributes={"cauce.endpoint": self.endpoint, "cauce.deployment": self.deployment},
            workspace=self.ws,
        ) as span:
            answer = self.target.chat(request, messages)
            answer.trace_id = span.trace_id
            return answer

    async def _blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, function, *args)

    async def _stream(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        summary: api.Summary,
        canary: str | None,
        receive: Receive,
        send: Send,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = threading.Event()
        trace: list[str | None] = [None]
        self._pool.submit(self._produce, request, messages, loop, queue, gone, trace)
        first = await queue.get()
        if isinstance(first, BaseException):  # nothing sent yet: an HTTP error
            gone.set()
            if isinstance(first, CauceError):
                await self._error(send, first, summary)
                return
            raise first
        guard = self.safety.output_guard(canary=canary) if self.safety is not None else None
        writer = api.ChunkWriter(api.completion_id(), self.target.model, request.include_usage)
        watcher = loop.create_task(_disconnected(receive))
        watcher.add_done_callback(lambda _: gone.set())
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream"),
                        (b"cache-control", b"no-cache"),
                        *self._headers,
                        # What is known before the answer (the input's safety decisions): the
                        # router keeps it for a stream that never reaches its end.
                        (b"cauce-summary", summary.encode()),
                    ],
                }
            )
            await self._relay(first, queue, writer, guard, summary, send, gone)
            summary.trace_id = trace[0]
            # A stream that broke off ends with its error event, not [DONE] (as OpenAI's do).
            end = summary.comment() + (api.DONE if summary.error is None else b"")
            await send({"type": "http.response.body", "body": end, "more_body": False})
        finally:
            gone.set()
            watcher.cancel()

    async def _relay(
        self,
        item: Any,
        queue: asyncio.Queue[Any],
        writer: api.ChunkWriter,
        guard: Any,
        summary: api.Summary,
        send: Send,
        gone: threading.Event,
    ) -> None:
        """Events for each piece until the last one (or an error event)."""
        progress: tuple[int | None, int | None] = (item.prompt_tokens, 0)
        await _event(send, writer.event({"role": "assistant", "content": ""}, progress=progress))
        blocked = False
        while True:
            if isinstance(item, BaseException):
                error = item if isinstance(item, CauceError) else CauceError(str(item))
                summary.finish_reason = None
                summary.prompt_tokens, summary.completion_tokens = progress
                summary.usage_estimated = progress[0] is None
                summary.error = api.error_body(error)[1]["error"]["code"]
                await _event(send, api.error_event(error))
                return
            if gone.is_set():
                return
            progress = (item.prompt_tokens, item.completion_tokens)
            text = item.text
            if guard is not None and not blocked:
                text = guard.feed(text)
                if item.finish_reason is not None:
                    text += guard.finish()
                blocked = guard.blocked
            if text:
                await _event(send, writer.event({"content": text}, progress=progress))
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
                await _event(send, writer.event({}, finish, progress=progress))
                if writer.include_usage:
                    await _event(send, writer.usage_event(progress[0] or 0, progress[1] or 0))
                return
            item = await queue.get()

    def _produce(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
        gone: threading.Event,
        trace: list[str | None],
    ) -> None:
        """Pieces of the answer into ``queue``, from a worker thread; stops at the next piece
        once the caller has gone (the target frees its model or upstream connection)."""

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                gone.set()

        def run() -> None:
            pieces = self.target.stream(request, messages)
            try:
                for piece in pieces:
                    put(piece)
                    if gone.is_set() or piece.finish_reason is not None:
                        break
            finally:
                pieces.close()  # type: ignore[attr-defined]

        try:
            if self.ws is None or isinstance(self.target, FlowTarget):
                run()
                return
            from cauce.genai import tracing

            with tracing.span(
                f"chat {self.endpoint}",
                operation="chat",
                kind="server",
                attributes={
                    "cauce.endpoint": self.endpoint,
                    "cauce.deployment": self.deployment,
                    "cauce.stream": True,
                },
                workspace=self.ws,
            ) as span:
                trace[0] = span.trace_id
                run()
        except BaseException as exc:
            put(exc)

    # -- embeddings ---------------------------------------------------------------------------

    async def _embeddings(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, self.max_request_bytes)
        request = api.embeddings_request(body)
        self._check_model(request.model)
        vectors, tokens, cost, model = await self._blocking(self.target.embed, request.texts)
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
        await _respond(send, 200, json.dumps(reply).encode(), headers)


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


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _event(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


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


def load_target(deployment: Any, ws: Workspace) -> Target:
    """The :class:`Target` of a deployment, loaded."""
    from cauce.genai import connections

    spec = deployment.spec
    kind = deployment.target_kind
    if kind == "model":
        from cauce.genai.llms import LocalLLM
        from cauce.registry.models import get_model, load

        llm = load(deployment.target, workspace=ws).unwrap()
        if not isinstance(llm, LocalLLM):
            raise InvalidInput(f"{deployment.target} is not an LLM; it is served as a model")
        tags = get_model(deployment.model_name, workspace=ws).tags
        price = None
        if "price_input" in tags and "price_output" in tags:
            price = (float(tags["price_input"]), float(tags["price_output"]))
        return LLMTarget(llm, deployment.target, deployment.model_name, price)
    if kind == "flow":
        from cauce.genai import flows

        return FlowTarget(flows.load(deployment.target, workspace=ws), ws)
    fallbacks = [
        connections.client(name.removeprefix("connections:/"), workspace=ws)
        for name in spec.get("fallbacks", [])
        if name.startswith("connections:/")
    ]
    primary = connections.client(deployment.connection, workspace=ws)
    proxy = ConnectionTarget(
        [primary, *fallbacks], spec.get("upstream_model"), f"connections:/{deployment.connection}"
    )
    if kind == "connection":
        return proxy
    from cauce.genai import prompts

    return PromptTarget(prompts.load(deployment.target, workspace=ws), proxy)
