"""What a GenAI deployment serves: a registered LLM, a flow, a prompt through a connection, or
a connection alone, each behind one async interface (:class:`Target`).

LLMs and flows are blocking Python: they run on the worker's threads. Connections are relayed
on the event loop: the request goes to the upstream server as it came (the model, and for a
prompt the rendered messages, replaced; ``stream_options.include_usage`` always asked), and its
events come back byte for byte, read only for their text, finish reason and usage. That keeps
the gateway's cost per request to parsing small JSON events, with no SDK in between; a
connection's retries (429, 5xx, transport failures, ``Retry-After`` honoured) and its fallback
connections apply until the first byte of the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from cauce.errors import BadRequest, CauceError, InvalidInput, LLMError
from cauce.genai import openai_api as api
from cauce.workspace import Workspace

log = logging.getLogger("cauce.genai-worker")
RETRIED = {408, 409, 429, 500, 502, 503, 504}
MAX_RETRY_WAIT_S = 8.0


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
    raw: bytes | None = None  # the upstream's body, passed on when the text is unchanged


@dataclass
class Delta:
    """A piece of a streamed answer, with the tokens counted up to it; the last one has
    ``finish_reason`` and the final usage. ``raw`` is the upstream's event, passed on as it is
    when its text is not changed."""

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    cost: float | None = None
    estimated: bool = False
    contexts: list[str] | None = None
    raw: bytes | None = None
    event: dict[str, Any] | None = None  # ``raw`` parsed, to write it again changed
    trace_id: str | None = None


class Target:
    """What a deployment serves. Blocking targets implement :meth:`chat` (and :meth:`stream`)
    and run on ``pool``; relayed ones override the async methods."""

    uri: str
    model: str  # the model name answers carry
    relays = False  # whether its events are the upstream's (no role chunk of our own)

    def chat(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Answer:
        """A whole answer (blocking)."""
        raise NotImplementedError

    def stream(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> Iterator[Delta]:
        """The answer piece by piece (blocking): by default, the whole answer at once."""
        answer = self.chat(request, messages)
        yield Delta(
            answer.text,
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.finish_reason,
            answer.cost,
            answer.estimated,
            answer.contexts,
            trace_id=answer.trace_id,
        )

    async def answer(
        self, request: api.ChatRequest, messages: list[dict[str, Any]], pool: Executor
    ) -> Answer:
        """A whole answer."""
        loop = asyncio.get_running_loop()
        # The caller's context travels with the call: the session its traces belong to.
        call = contextvars.copy_context().run
        return await loop.run_in_executor(pool, call, self.chat, request, messages)

    async def pieces(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        pool: Executor,
        gone: threading.Event,
    ) -> AsyncGenerator[Delta, None]:
        """The answer piece by piece; a failure before the first piece raises from it. Once
        ``gone`` is set the target stops at its next piece (and frees its model)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: nobody is listening any more
                gone.set()

        def produce() -> None:
            try:
                found = self.stream(request, messages)
                try:
                    for piece in found:
                        put(piece)
                        if gone.is_set() or piece.finish_reason is not None:
                            break
                finally:
                    found.close()  # type: ignore[attr-defined]
            except BaseException as exc:
                put(exc)
            put(None)

        pool.submit(contextvars.copy_context().run, produce)
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
            if item.finish_reason is not None:
                return

    async def close(self) -> None:
        """Let go of connections (the worker is stopping)."""

    async def embed(
        self, texts: list[str], pool: Executor
    ) -> tuple[list[list[float]], int, float | None, str]:
        """Vectors, prompt tokens, cost and the model that embedded them: by default with the
        offline MiniLM."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, _minilm_embed, texts)


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

    def __init__(
        self,
        llm: Any,
        uri: str,
        name: str,
        price: tuple[float, float] | None,
        ws: Workspace | None = None,
    ) -> None:
        self.llm, self.uri, self.model, self.price, self.ws = llm, uri, name, price, ws

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
        with contextlib.ExitStack() as stack:
            trace_id = None
            if self.ws is not None:
                from cauce.genai import tracing

                span = stack.enter_context(
                    tracing.span(
                        f"chat {self.model}",
                        operation="chat",
                        kind="server",
                        attributes={"gen_ai.request.model": self.model, **settings},
                        workspace=self.ws,
                    )
                )
                span.content("gen_ai.input.messages", messages)
                trace_id = span.trace_id
            try:
                for chunk in chunks:
                    if chunk.usage is None:
                        yield Delta(chunk.text, prompt, chunk.sampled, trace_id=trace_id)
                        continue
                    usage = chunk.usage
                    cost = self._cost(usage.prompt_tokens, usage.completion_tokens)
                    if self.ws is not None:
                        span.usage(usage.prompt_tokens, usage.completion_tokens, cost)
                    yield Delta(
                        chunk.text,
                        usage.prompt_tokens,
                        usage.completion_tokens,
                        chunk.finish_reason,
                        cost,
                        trace_id=trace_id,
                    )
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
            trace_id=last.trace_id,
        )


# -- connections, relayed -----------------------------------------------------------------------


class _Route:
    """One connection as the relay calls it: its origin, paths, headers and prices."""

    def __init__(self, client: Any) -> None:
        from cauce.serving.upstream import Upstream

        self.client = client
        self.name = client.name
        self.spec = client.spec
        self.origin, _, self.headers = client.route("chat/completions", "-")
        self.http = Upstream(self.origin)
        self.timeout = client.spec.timeout / 1000

    def path(self, operation: str, model: str) -> str:
        return str(self.client.route(operation, model)[1])

    async def open(self, operation: str, model: str, body: bytes) -> Any:
        """The answer's head (and a whole body), retried as the connection says: on 408, 409,
        429, 5xx and transport failures, after ``Retry-After`` or a growing pause."""
        from cauce.serving.upstream import UpstreamError

        headers = [(b"content-type", b"application/json"), *self.headers]
        path = self.path(operation, model).encode()
        attempts = self.spec.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                opened = await self.http.open(b"POST", path, body, headers, self.timeout)
            except (UpstreamError, TimeoutError) as exc:
                if last:
                    raise LLMError(f"connection {self.name!r}: {exc or 'timed out'}") from None
                await asyncio.sleep(min(MAX_RETRY_WAIT_S, 0.5 * 2.0**attempt))
                continue
            if opened.status in RETRIED and not last:
                wait = _retry_after(opened.headers.get(b"retry-after"), attempt)
                opened.close()
                await asyncio.sleep(wait)
                continue
            return opened
        raise AssertionError("unreachable")

    def cost(self, model: str, prompt: int | None, completion: int | None) -> float | None:
        from cauce.genai.connections.calls import Usage

        if prompt is None or completion is None:
            return None
        found: float | None = self.client.cost(
            model, Usage(prompt, completion, prompt + completion)
        )
        return found


def _trace_id(span: Any) -> str | None:
    """A span's trace id; None for the stand-in of a client that traces nowhere (whose every
    attribute is a no-op function)."""
    found = getattr(span, "trace_id", None)
    return found if isinstance(found, str) else None


def _retry_after(raw: bytes | None, attempt: int) -> float:
    try:
        return (
            min(MAX_RETRY_WAIT_S, float(raw)) if raw else min(MAX_RETRY_WAIT_S, 0.5 * 2.0**attempt)
        )
    except ValueError:
        return min(MAX_RETRY_WAIT_S, 0.5 * 2.0**attempt)


class ConnectionTarget(Target):
    """An OpenAI-compatible server through a connection (and connections to fall back on),
    relayed on the event loop."""

    relays = True

    def __init__(self, clients: list[Any], model: str | None, uri: str) -> None:
        self.routes = [_Route(c) for c in clients]
        self.upstream_model = model
        self.uri = uri
        self.model = model or clients[0].spec.models.chat or clients[0].name
        self.defaults: dict[str, Any] = {}

    async def close(self) -> None:
        for route in self.routes:
            await route.http.close()

    def _model(self, at: int) -> str:
        route = self.routes[at]
        if at == 0 and self.upstream_model:
            return self.upstream_model
        return str(route.spec.models.chat or self.model)

    def _body(
        self, request: api.ChatRequest, messages: list[dict[str, Any]], model: str, stream: bool
    ) -> bytes:
        body = {**self.defaults, **request.model_dump(exclude_none=True, exclude={"variables"})}
        body.pop("model", None)
        body.update(model=model, messages=messages)
        if stream:
            body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        return json.dumps(body, ensure_ascii=False).encode()

    async def _opened(
        self, request: api.ChatRequest, messages: list[dict[str, Any]], stream: bool
    ) -> tuple[Any, _Route, str]:
        """The first answer that is not an error worth falling back from (429, 5xx, or no
        answer at all), in the order of the connections; the last one's otherwise."""
        error: CauceError | None = None
        found: tuple[Any, _Route, str] | None = None
        for at, route in enumerate(self.routes):
            model = self._model(at)
            try:
                opened = await route.open(
                    "chat/completions", model, self._body(request, messages, model, stream)
                )
            except LLMError as exc:
                error = exc
                log.warning("connection %s failed: %s", route.name, exc)
                continue
            found = (opened, route, model)
            if opened.status != 429 and opened.status < 500:
                return found
            log.warning("connection %s answered %s", route.name, opened.status)
        if found is not None:
            return found
        assert error is not None
        raise error

    async def answer(
        self, request: api.ChatRequest, messages: list[dict[str, Any]], pool: Executor
    ) -> Answer:
        route = self.routes[0]
        span = route.client.start_span("chat", self._model(0), _parameters(request))
        span.content("gen_ai.input.messages", messages)
        started = time.perf_counter()
        try:
            opened, route, model = await self._opened(request, messages, stream=False)
            body = opened.body or b""
            if opened.status >= 400:
                raise _upstream_error(route.name, opened.status, body)
            answer = _whole(body, route, model)
        except BaseException as exc:
            span.fail(exc)
            span.end()
            raise
        answer.trace_id = _trace_id(span)
        route.client.end_span(span, _result(answer, started, None))
        return answer

    async def pieces(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        pool: Executor,
        gone: threading.Event,
    ) -> AsyncGenerator[Delta, None]:
        route = self.routes[0]
        span = route.client.start_span(
            "chat", self._model(0), {**_parameters(request), "stream": True}
        )
        span.content("gen_ai.input.messages", messages)
        trace_id = _trace_id(span)
        started = time.perf_counter()
        first: float | None = None
        texts: list[str] = []
        last = Delta("")
        ended = False
        opened = None
        try:
            opened, route, model = await self._opened(request, messages, stream=True)
            if opened.status >= 400:
                raise _upstream_error(route.name, opened.status, opened.body or b"")
            if opened.body is not None:  # not a stream after all: one piece
                answer = _whole(opened.body, route, model)
                last = Delta(
                    answer.text,
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    answer.finish_reason or "stop",
                    answer.cost,
                    trace_id=trace_id,
                )
                texts.append(answer.text)
                ended = True
                route.client.end_span(span, _result(answer, started, None))
                yield last
                return
            async for delta in _events(opened, route, model):
                if delta.text and first is None:
                    first = (time.perf_counter() - started) * 1000
                texts.append(delta.text)
                delta.trace_id = trace_id
                last = delta
                if delta.finish_reason is not None:
                    # The span ends with the answer before its last piece goes: the caller
                    # need not ask for more to have it written.
                    ended = True
                    answer = Answer(
                        "".join(texts),
                        delta.finish_reason,
                        delta.prompt_tokens,
                        delta.completion_tokens,
                        delta.cost,
                        model,
                    )
                    route.client.end_span(span, _result(answer, started, first))
                yield delta
                if ended or gone.is_set():
                    break
            if not ended and not gone.is_set():
                raise LLMError(f"connection {route.name!r}: the stream ended before the answer did")
        except BaseException as exc:
            if ended:
                raise
            if isinstance(exc, GeneratorExit | asyncio.CancelledError):  # the caller has gone
                _end_abandoned(route, span, texts, last, model, started, first)
            else:
                span.fail(exc)
                span.end()
            raise
        finally:
            if opened is not None:
                opened.close()  # unless read to its end: the upstream sees the caller go
        if not ended:  # the caller stopped asking (gone)
            _end_abandoned(route, span, texts, last, model, started, first)

    async def embed(
        self, texts: list[str], pool: Executor
    ) -> tuple[list[list[float]], int, float | None, str]:
        loop = asyncio.get_running_loop()
        call = contextvars.copy_context().run
        result = await loop.run_in_executor(pool, call, self.routes[0].client.embed, texts)
        tokens = result.usage.input_tokens if result.usage else 0
        return result.vectors, tokens, result.cost, result.model


def _end_abandoned(
    route: _Route,
    span: Any,
    texts: list[str],
    last: Delta,
    model: str,
    started: float,
    first: float | None,
) -> None:
    """End the span of a stream its caller left: what was answered up to there."""
    answer = Answer("".join(texts), None, last.prompt_tokens, last.completion_tokens, None, model)
    route.client.end_span(span, _result(answer, started, first), abandoned=True)


async def _events(opened: Any, route: _Route, model: str) -> AsyncGenerator[Delta, None]:
    """The upstream's server-sent events as pieces: each content event as it comes, the finish
    event held back until the usage chunk after it (or [DONE]) says what the answer cost."""
    buffer = b""
    count = 0
    finish: Delta | None = None
    usage: tuple[int | None, int | None] = (None, None)
    done = False
    async for chunk in opened.chunks():
        if done:
            continue  # read to the end, so that the connection can serve another request
        buffer += chunk
        while (end := buffer.find(b"\n\n")) >= 0:
            raw, buffer = buffer[: end + 2], buffer[end + 2 :]
            data = _data(raw)
            if data is None:
                continue
            if data == b"[DONE]":
                done = True
                break
            try:
                event = json.loads(data)
            except ValueError:
                raise LLMError(
                    f"connection {route.name!r} sent an event that is not JSON"
                ) from None
            if isinstance(event.get("error"), dict):
                raise LLMError(
                    f"connection {route.name!r}: {event['error'].get('message', 'error')}"
                )
            if event.get("usage"):
                found = event["usage"]
                usage = (found.get("prompt_tokens"), found.get("completion_tokens"))
            choices = event.get("choices") or []
            if not choices:
                continue  # the usage chunk: Cauce writes its own
            choice = choices[0]
            text = (choice.get("delta") or {}).get("content") or ""
            if text:
                count += 1
            piece = Delta(text, None, count, raw=raw, event=event, estimated=True)
            if choice.get("finish_reason"):
                piece.finish_reason = choice["finish_reason"]
                finish = piece  # held until the usage chunk after it, or [DONE]
                continue
            yield piece
    if finish is not None:  # [DONE], or the end of the body: the answer is whole
        yield _final(finish, usage, count, route, model)


def _final(
    piece: Delta, usage: tuple[int | None, int | None], count: int, route: _Route, model: str
) -> Delta:
    if usage[1] is None:  # a server that sends no usage: the pieces counted, marked so
        piece.completion_tokens, piece.estimated = count, True
    else:
        piece.prompt_tokens, piece.completion_tokens = usage
        piece.estimated = False
    piece.cost = route.cost(model, piece.prompt_tokens, piece.completion_tokens)
    return piece


def _data(raw: bytes) -> bytes | None:
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


def _whole(body: bytes, route: _Route, model: str) -> Answer:
    try:
        value = json.loads(body)
        choice = value["choices"][0]
        text = choice["message"].get("content") or ""
        usage = value.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise LLMError(
            f"connection {route.name!r} answered something that is not a chat completion"
        ) from None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Answer(
        text,
        choice.get("finish_reason"),
        prompt,
        completion,
        route.cost(value.get("model") or model, prompt, completion),
        value.get("model") or model,
        raw=body,
    )


def _result(answer: Answer, started: float, first: float | None) -> Any:
    from cauce.genai.connections.calls import ChatResult, Usage

    usage = None
    if answer.prompt_tokens is not None and answer.completion_tokens is not None:
        usage = Usage(
            answer.prompt_tokens,
            answer.completion_tokens,
            answer.prompt_tokens + answer.completion_tokens,
        )
    return ChatResult(
        text=answer.text,
        finish_reason=answer.finish_reason,
        model=answer.model,
        response_id=None,
        usage=usage,
        cost=answer.cost,
        latency_ms=(time.perf_counter() - started) * 1000,
        first_token_ms=first,
    )


class _UpstreamAnswer(CauceError):
    """An upstream's error answer, passed on with its status and OpenAI body."""

    def __init__(self, status: int, body: dict[str, Any], message: str) -> None:
        super().__init__(message, code=str(body.get("code") or "upstream_error"))
        self.http_status = status
        self.body = body


def _upstream_error(name: str, status: int, body: bytes) -> CauceError:
    try:
        error = json.loads(body)["error"]
        message = str(error.get("message") or error)
    except (ValueError, KeyError, TypeError, AttributeError):
        error, message = {}, body[:200].decode("utf-8", "replace")
    if status in (400, 404, 413, 422):  # the caller's request: theirs to fix
        return BadRequest(
            f"connection {name!r}: {message}",
            details={"field": error.get("param"), "code": error.get("code")},
        )
    return LLMError(f"connection {name!r} answered {status}: {message}")


class PromptTarget(Target):
    """A prompt version rendered, then sent through a connection."""

    relays = True

    def __init__(self, version: Any, connection: ConnectionTarget) -> None:
        self.version = version
        self.connection = connection
        self.uri = version.uri
        parameters = version.model_parameters
        connection.upstream_model = connection.upstream_model or parameters.get("model")
        connection.model = connection.upstream_model or connection.model
        connection.defaults = {
            k: v for k, v in parameters.items() if v is not None and k != "model"
        }
        self.model = connection.model

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

    async def answer(
        self, request: api.ChatRequest, messages: list[dict[str, Any]], pool: Executor
    ) -> Answer:
        return await self.connection.answer(request, self.conversation(request, messages), pool)

    async def pieces(
        self,
        request: api.ChatRequest,
        messages: list[dict[str, Any]],
        pool: Executor,
        gone: threading.Event,
    ) -> AsyncGenerator[Delta, None]:
        conversation = self.conversation(request, messages)
        async for piece in self.connection.pieces(request, conversation, pool, gone):
            yield piece

    async def embed(
        self, texts: list[str], pool: Executor
    ) -> tuple[list[list[float]], int, float | None, str]:
        return await self.connection.embed(texts, pool)

    async def close(self) -> None:
        await self.connection.close()


class FlowTarget(Target):
    """A flow version; one request runs one line."""

    def __init__(self, flow: Any, ws: Workspace, indexes: dict[str, int] | None = None) -> None:
        self.flow, self.ws, self.indexes = flow, ws, indexes or {}
        self.uri = flow.uri
        self.model = flow.name

    def _inputs(self, request: api.ChatRequest, messages: list[dict[str, Any]]) -> dict[str, Any]:
        values = dict(_variables(request))
        missing = [n for n in self.flow.input_names() if n not in values]
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
        line = self.flow.run(
            self._inputs(request, messages), workspace=self.ws, indexes=self.indexes
        )
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
        return LLMTarget(llm, deployment.target, deployment.model_name, price, ws)
    if kind == "flow":
        from cauce.genai import flows

        return FlowTarget(flows.load(deployment.target, workspace=ws), ws, spec.get("indexes"))
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
