"""Calls through a connection with the official ``openai`` client: chat (whole or streamed)
and embeddings, with token usage and cost read from the server's answer.

Retries are the client's own: up to ``max_retries`` with exponential backoff and jitter for
408, 409, 429, 5xx and transport errors, honouring ``Retry-After`` (and ``retry-after-ms``) up
to a minute. What still fails after them is one :class:`~cauce.errors.LLMError` (or an
InvalidInput for a request the server refuses as malformed), naming the connection and what
the server said — never the key.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.errors import CauceError, InvalidInput, LLMError

if TYPE_CHECKING:
    from cauce.genai.connections import ConnectionSpec, Price
    from cauce.workspace import Workspace

__all__ = ["ChatResult", "EmbeddingResult", "LLMClient", "Stream", "Usage"]


@dataclass(frozen=True)
class Usage:
    """Tokens as the server counted them."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class ChatResult:
    """A chat answer: its text, why it ended, the server's usage and what it cost."""

    text: str
    finish_reason: str | None
    model: str
    response_id: str | None
    usage: Usage | None
    cost: float | None
    latency_ms: float
    first_token_ms: float | None = None


@dataclass(frozen=True)
class EmbeddingResult:
    """Embeddings, in the order of the texts, with the server's usage."""

    vectors: list[list[float]]
    model: str
    usage: Usage | None
    cost: float | None
    latency_ms: float


@dataclass
class Stream:
    """A streamed chat answer: iterate for the text deltas; ``result`` is set at the end.

    Usage comes from the server's final usage chunk (asked for with
    ``stream_options.include_usage``); a server that sends none leaves ``usage`` at None
    rather than a guess.
    """

    _chunks: Iterable[Any]  # the client's stream: closing it closes the response
    _client: LLMClient
    _model: str
    _started: float
    _span: Any = None
    result: ChatResult | None = None
    _parts: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[str]:
        finish: str | None = None
        usage: Usage | None = None
        response_id: str | None = None
        model = self._model
        first: float | None = None
        ended = False
        try:
            with self._client._errors("chat (streamed)"):
                for chunk in self._chunks:
                    response_id = chunk.id or response_id
                    model = chunk.model or model
                    # Some servers put usage on the last chunk that still has choices: read both.
                    if chunk.usage is not None:
                        usage = _usage(chunk.usage)
                    for choice in chunk.choices:
                        delta = choice.delta.content if choice.delta else None
                        if delta:
                            if first is None:
                                first = (time.perf_counter() - self._started) * 1000
                            self._parts.append(delta)
                            yield delta
                        if choice.finish_reason:
                            finish = choice.finish_reason
            ended = True
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit) and self._span is not None:
                self._span.fail(exc)
            raise
        finally:
            if not ended and hasattr(self._chunks, "close"):
                # The reader stopped early: closing the response tells the server to stop.
                self._chunks.close()
            self.result = ChatResult(
                text="".join(self._parts),
                finish_reason=finish,
                model=model,
                response_id=response_id,
                usage=usage,
                cost=self._client.cost(model, usage, requested=self._model),
                latency_ms=(time.perf_counter() - self._started) * 1000,
                first_token_ms=first,
            )
            if self._span is not None:
                _record(self._span, self.result)
                self._span.set("cauce.time_to_first_token_ms", first)
                if not ended:
                    # The reader stopped early: what was counted up to here, marked as such.
                    self._span.set("cauce.stream.abandoned", True)
                self._span.end()

    def text(self) -> str:
        """Read the whole stream; the answer's text."""
        for _ in self:
            pass
        assert self.result is not None
        return self.result.text


class LLMClient:
    """Chat and embeddings through one connection."""

    def __init__(
        self,
        name: str,
        spec: ConnectionSpec,
        secret: str | None,
        workspace: Workspace | None = None,
    ):
        self.name = name
        self.spec = spec
        self._secret = secret
        self._openai: Any = None
        # Calls are traced in this workspace's store; without one, not at all.
        self.workspace = workspace
        self._prices: dict[str, Price | None] = {}

    def __repr__(self) -> str:
        return f"LLMClient({self.name!r}, base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        """Where the server is."""
        return self.spec.base_url or "https://api.openai.com/v1"

    def chat(
        self, messages: list[dict[str, Any]], *, model: str | None = None, **params: Any
    ) -> ChatResult:
        """One chat completion. ``params`` are the API's (temperature, max_tokens, stop, seed…)."""
        chosen = self._model(model, "chat")
        started = time.perf_counter()
        with self._span("chat", chosen, params) as span:
            span.content("gen_ai.input.messages", messages)
            with self._errors("chat"):
                answer = self._api().chat.completions.create(
                    model=chosen, messages=messages, **_clean(params)
                )
                if not getattr(answer, "choices", None):
                    raise LLMError(f"connection {self.name!r}: the chat answer has no choices")
                choice = answer.choices[0]
                usage = _usage(answer.usage) if answer.usage is not None else None
                result = ChatResult(
                    text=choice.message.content or "",
                    finish_reason=choice.finish_reason,
                    model=answer.model or chosen,
                    response_id=answer.id,
                    usage=usage,
                    cost=self.cost(answer.model or chosen, usage, requested=chosen),
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            _record(span, result)
            return result

    def stream(
        self, messages: list[dict[str, Any]], *, model: str | None = None, **params: Any
    ) -> Stream:
        """A streamed chat completion, with the usage chunk asked for."""
        chosen = self._model(model, "chat")
        started = time.perf_counter()
        span = self._start_span("chat", chosen, {**params, "stream": True})
        span.content("gen_ai.input.messages", messages)
        try:
            with self._errors("chat (streamed)"):
                chunks = self._api().chat.completions.create(
                    model=chosen,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **_clean(params),
                )
        except BaseException as exc:
            span.fail(exc)
            span.end()
            raise
        return Stream(chunks, self, chosen, started, span)

    def embed(self, texts: list[str], *, model: str | None = None) -> EmbeddingResult:
        """Embeddings of ``texts``, in order."""
        chosen = self._model(model, "embeddings")
        started = time.perf_counter()
        with self._span("embeddings", chosen, {}) as span:
            with self._errors("embeddings"):
                answer = self._api().embeddings.create(model=chosen, input=texts)
                data = sorted(answer.data, key=lambda d: d.index)
                if len(data) != len(texts):
                    raise LLMError(
                        f"connection {self.name!r}: asked for {len(texts)} embeddings, "
                        f"got {len(data)}"
                    )
                usage = None
                if answer.usage is not None:
                    prompt = answer.usage.prompt_tokens
                    usage = Usage(prompt, 0, answer.usage.total_tokens or prompt)
                result = EmbeddingResult(
                    vectors=[list(d.embedding) for d in data],
                    model=answer.model or chosen,
                    usage=usage,
                    cost=self.cost(answer.model or chosen, usage, requested=chosen),
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            span.set("gen_ai.response.model", result.model)
            span.set("gen_ai.embeddings.dimension.count", len(data[0].embedding) if data else None)
            if usage is not None:
                span.usage(usage.input_tokens, None, result.cost)
            return result

    def warm(self) -> None:
        """Make the HTTP client and import what calls use now, so that the first call's
        latency is the server's alone (a comparison times every call alike)."""
        api = self._api()
        # openai imports each resource on first use.
        _ = api.chat.completions, api.embeddings

    def models(self) -> list[str]:
        """The model ids the server lists."""
        with self._errors("list models"):
            return sorted(m.id for m in self._api().models.list())

    def cost(
        self, model: str, usage: Usage | None, *, requested: str | None = None
    ) -> float | None:
        """What the usage cost; None without a price or usage.

        ``model`` is the model the server says answered, ``requested`` the one asked for (a
        server may answer with a dated name: ``gpt-4o-mini-2024-07-18``). The first price found
        wins: the connection's ``prices`` for ``model``, then for ``requested``; then the
        catalog entry (``kind: CatalogModel``) of this connection and ``requested``, then of
        ``model``; then the tags ``price_input``, ``price_output`` (``price_cached_input``) of
        the registered model named ``model``. Prices are per million tokens.
        """
        if usage is None:
            return None
        price = self.price(model, requested)
        if price is None:
            return None
        cached = min(usage.cached_tokens, usage.input_tokens) if price.cached_input else 0
        return (
            (usage.input_tokens - cached) * price.input
            + cached * (price.cached_input or 0.0)
            + usage.output_tokens * price.output
        ) / 1_000_000

    def price(self, model: str, requested: str | None = None) -> Price | None:
        """The price a call to ``model`` (asked for as ``requested``) is charged at, in the
        order :meth:`cost` gives; None when nothing prices it."""
        asked = requested or model
        found = self.spec.prices.get(model) or self.spec.prices.get(asked)
        if found is None and self.workspace is not None:
            from cauce.genai.catalog import catalog_price

            found = catalog_price(self.name, asked, workspace=self.workspace)
            if found is None and asked != model:
                found = catalog_price(self.name, model, workspace=self.workspace)
        return found or self._registered_price(model)

    def _registered_price(self, model: str) -> Price | None:
        if model in self._prices:
            return self._prices[model]
        found: Price | None = None
        if self.workspace is not None:
            from cauce.errors import NotFound
            from cauce.genai.connections import Price
            from cauce.registry.models import get_model

            try:
                tags = get_model(model, workspace=self.workspace).tags
            except (NotFound, InvalidInput):
                tags = {}
            if "price_input" in tags and "price_output" in tags:
                try:
                    found = Price(
                        input=float(tags["price_input"]),
                        output=float(tags["price_output"]),
                        cached_input=float(tags["price_cached_input"])
                        if "price_cached_input" in tags
                        else None,
                    )
                except ValueError:
                    found = None  # a tag that is no price prices nothing
        self._prices[model] = found
        return found

    # -- tracing ----------------------------------------------------------------------------

    def _attributes(self, operation: str, model: str, params: dict[str, Any]) -> dict[str, Any]:
        from urllib.parse import urlsplit

        url = urlsplit(self.base_url)
        found: dict[str, Any] = {
            "gen_ai.provider.name": (
                "azure.ai.openai" if self.spec.provider == "azure_openai" else "openai"
            ),
            "gen_ai.request.model": model,
            "server.address": url.hostname,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
            "cauce.connection": self.name,
        }
        for key in ("temperature", "top_p", "max_tokens", "seed", "stream"):
            if params.get(key) is not None:
                found[f"gen_ai.request.{key}"] = params[key]
        stop = params.get("stop")
        if stop is not None:
            found["gen_ai.request.stop_sequences"] = [stop] if isinstance(stop, str) else stop
        return found

    def _span(self, operation: str, model: str, params: dict[str, Any]) -> Any:
        if self.workspace is None:
            return nullcontext(_NoSpan())
        from cauce.genai import tracing

        return tracing.span(
            f"{operation} {model}",
            operation=operation,
            kind="client",
            attributes=self._attributes(operation, model, params),
            workspace=self.workspace,
        )

    def _start_span(self, operation: str, model: str, params: dict[str, Any]) -> Any:
        if self.workspace is None:
            return _NoSpan()
        from cauce.genai import tracing

        return tracing.start(
            f"{operation} {model}",
            operation=operation,
            kind="client",
            attributes=self._attributes(operation, model, params),
            workspace=self.workspace,
        )

    def route(self, operation: str, model: str) -> tuple[str, str, list[tuple[bytes, bytes]]]:
        """Where and how a plain HTTP client makes one call through this connection (the
        gateway's relay): the server's origin, the path, and the headers with the key."""
        from urllib.parse import urlsplit

        url = urlsplit(self.base_url)
        origin = f"{url.scheme}://{url.netloc}"
        headers = [(k.lower().encode(), v.encode()) for k, v in self.spec.headers.items()]
        if self.spec.provider == "azure_openai":
            path = (
                f"{url.path.rstrip('/')}/openai/deployments/{model}/{operation}"
                f"?api-version={self.spec.api_version}"
            )
            if self._secret:
                headers.append((b"api-key", self._secret.encode()))
        else:
            path = f"{url.path.rstrip('/')}/{operation}"
            if self._secret:
                headers.append((b"authorization", b"Bearer " + self._secret.encode()))
        return origin, path, headers

    def start_span(self, operation: str, model: str, params: dict[str, Any]) -> Any:
        """A client span for a call made elsewhere (the gateway's relay); end it with
        :meth:`end_span`."""
        return self._start_span(operation, model, params)

    def end_span(self, span: Any, result: ChatResult, *, abandoned: bool = False) -> None:
        """Record an answer on a span from :meth:`start_span`, and end it."""
        _record(span, result)
        span.set("cauce.time_to_first_token_ms", result.first_token_ms)
        if abandoned:
            span.set("cauce.stream.abandoned", True)
        span.end()

    # -- the openai client ---------------------------------------------------------------

    def _model(self, given: str | None, purpose: str) -> str:
        chosen = given or getattr(self.spec.models, purpose)
        if not chosen:
            raise InvalidInput(
                f"connection {self.name!r} names no {purpose} model: pass model= or set "
                f"models.{purpose} in its spec"
            )
        return str(chosen)

    def _api(self) -> Any:
        if self._openai is None:
            import openai

            common: dict[str, Any] = {
                # Local servers take any key; the client refuses to start without one.
                "api_key": self._secret or "none",
                "timeout": self.spec.timeout / 1000,
                "max_retries": self.spec.max_retries,
                "default_headers": self.spec.headers or None,
            }
            if self.spec.provider == "azure_openai":
                self._openai = openai.AzureOpenAI(
                    azure_endpoint=self.base_url, api_version=self.spec.api_version, **common
                )
            else:
                self._openai = openai.OpenAI(base_url=self.base_url, **common)
        return self._openai

    def _errors(self, what: str) -> _Errors:
        return _Errors(self, what)


class _Errors:
    """Turns what the openai client raises into one Cauce error naming the connection."""

    def __init__(self, llm: LLMClient, what: str):
        self.llm, self.what = llm, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, CauceError) or not isinstance(exc, Exception):
            return
        import openai

        where = f"connection {self.llm.name!r} ({self.llm.base_url}): {self.what}"
        tries = f"after {self.llm.spec.max_retries} retries" if self.llm.spec.max_retries else ""
        if isinstance(exc, openai.APITimeoutError):
            seconds = self.llm.spec.timeout / 1000
            raise LLMError(f"{where} timed out ({seconds:g} s per try) {tries}".strip()) from None
        if isinstance(exc, openai.APIConnectionError):
            raise LLMError(f"{where} could not reach the server {tries}: {exc}".strip()) from None
        if isinstance(exc, openai.APIStatusError):
            status, message = exc.status_code, _server_message(exc)
            if status in (400, 404, 413, 422):
                raise InvalidInput(
                    f"{where} refused the request (HTTP {status}): {message}"
                ) from None
            if status in (401, 403):
                raise LLMError(
                    f"{where} refused the connection's credentials (HTTP {status}): {message}",
                    hint="apply the Connection spec again with the right api_key",
                ) from None
            retried = f" {tries}" if status in (408, 409, 429) or status >= 500 else ""
            raise LLMError(f"{where} failed with HTTP {status}{retried}: {message}") from None
        if isinstance(exc, (openai.APIResponseValidationError, ValueError, AttributeError)):
            raise LLMError(
                f"{where}: the server's answer is not the OpenAI API's shape ({type(exc).__name__})"
            ) from None


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
    return str(getattr(exc, "message", exc))[:500]


def _usage(raw: Any) -> Usage:
    prompt = int(raw.prompt_tokens or 0)
    completion = int(raw.completion_tokens or 0)
    details = getattr(raw, "prompt_tokens_details", None)
    completion_details = getattr(raw, "completion_tokens_details", None)
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=int(raw.total_tokens or prompt + completion),
        cached_tokens=int(getattr(details, "cached_tokens", 0) or 0),
        reasoning_tokens=int(getattr(completion_details, "reasoning_tokens", 0) or 0),
    )


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _record(span: Any, result: ChatResult) -> None:
    span.set("gen_ai.response.id", result.response_id)
    span.set("gen_ai.response.model", result.model)
    if result.finish_reason:
        span.set("gen_ai.response.finish_reasons", [result.finish_reason])
    if result.usage is not None:
        span.usage(result.usage.input_tokens, result.usage.output_tokens, result.cost)
    span.content("gen_ai.output.messages", [{"role": "assistant", "content": result.text}])


class _NoSpan:
    """Stands in for a span when a client traces nowhere."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
