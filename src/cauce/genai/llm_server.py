"""The local LLM behind OpenAI's HTTP API: ``POST /v1/chat/completions``, ``GET /v1/models``.

Any OpenAI client talks to it (``base_url="http://127.0.0.1:8080/v1"``, any API key):
non-streaming answers, and streaming ones as server-sent events (``data: {chat.completion.chunk}``
… ``data: [DONE]``; with ``stream_options.include_usage`` a last chunk with ``choices: []``
carries the usage, every other chunk ``usage: null``). Errors take OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``: 400 for a request that cannot be answered,
404 for another model's name.

llama.cpp's own server (``llama-cpp-python[server]``) is not used: it has no
``stream_options.include_usage``, answers a malformed request with 422 and streams no usage.

Example::

    with LLMServer(LocalLLM(packaged_model_path()), model_name="smollm2") as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused")
        client.chat.completions.create(model="smollm2", messages=[...], max_tokens=16)
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from cauce.errors import BackendError, CauceError, InvalidInput, NotFound

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from cauce.genai.llms import LocalLLM
    from cauce.workspace import Workspace

__all__ = ["ChatRequest", "LLMServer", "StreamOptions", "create_app", "serve", "serve_model"]

OPENAI_TEMPERATURE = 1.0  # what OpenAI's API samples with when a request names none


class StreamOptions(BaseModel):
    """``stream_options`` of a chat request."""

    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of OpenAI's chat request this server reads; others are ignored.

    Messages are checked by the LLM itself (:func:`cauce.genai.llms.check_messages`), so that
    the Python API and the HTTP API refuse the same things with the same words.
    """

    model_config = ConfigDict(extra="ignore")
    model: str
    messages: list[Any]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None


def create_app(llm: LocalLLM, *, model_name: str | None = None) -> FastAPI:
    """The FastAPI application that answers for ``llm`` under ``model_name``."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import StreamingResponse
    from starlette.exceptions import HTTPException

    name = model_name or llm.name
    created = int(time.time())

    app = FastAPI(title="Cauce local LLM", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        message = f"{param}: {first['msg']}" if param else str(first["msg"])
        return _error(400, message, param=param)

    @app.exception_handler(InvalidInput)
    async def refused(request: Request, exc: InvalidInput) -> JSONResponse:
        return _error(
            400,
            str(exc),
            param=exc.details.get("field"),
            code=exc.details.get("code"),
        )

    @app.exception_handler(NotFound)
    async def missing(request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, exc.message, code=exc.details.get("code"))

    @app.exception_handler(CauceError)
    async def failed(request: Request, exc: CauceError) -> JSONResponse:
        return _error(exc.http_status, str(exc), code=exc.code)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(name, created)]}

    @app.get("/v1/models/{model_id}")
    def model(model_id: str) -> dict[str, Any]:
        _check_model(model_id, name)
        return _model_card(name, created)

    @app.post("/v1/chat/completions", response_model=None)
    def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        _check_model(body.model, name)
        if body.n not in (None, 1):
            raise InvalidInput(
                "n must be 1: this server returns one choice", details={"field": "n"}
            )
        if body.tools:
            raise InvalidInput("this model does not call tools", details={"field": "tools"})
        if body.stream_options is not None and not body.stream:
            raise InvalidInput(
                "stream_options is only allowed with stream: true",
                details={"field": "stream_options"},
            )
        settings: dict[str, Any] = {
            "temperature": (OPENAI_TEMPERATURE if body.temperature is None else body.temperature),
            "top_p": 1.0 if body.top_p is None else body.top_p,
            "max_tokens": (
                body.max_completion_tokens
                if body.max_completion_tokens is not None
                else body.max_tokens
            ),
            "stop": body.stop,
            "seed": body.seed,
            "response_format": body.response_format,
        }
        completion_id = f"chatcmpl-{secrets.token_hex(12)}"
        now = int(time.time())
        if not body.stream:
            result = llm.chat(body.messages, **settings)
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": now,
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result.text},
                        "logprobs": None,
                        "finish_reason": result.finish_reason,
                    }
                ],
                "usage": _usage(result.usage),
            }
        # stream() checks the request before the first chunk: a bad one is a 400, not a
        # stream that breaks off.
        chunks = llm.stream(body.messages, **settings)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _events(chunks, completion_id, now, name, include_usage)
        return StreamingResponse(
            _in_thread(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    return app


def _events(
    chunks: Generator[Any, None, None],
    completion_id: str,
    created: int,
    model: str,
    include_usage: bool,
) -> Generator[bytes, None, None]:
    """Server-sent events of ``chat.completion.chunk`` objects, ending ``data: [DONE]``."""

    def event(choices: list[dict[str, Any]], usage: Any = None, last: bool = False) -> bytes:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
        }
        if include_usage:
            body["usage"] = _usage(usage) if last else None
        return b"data: " + json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n\n"

    def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    try:
        yield event(choice({"role": "assistant", "content": ""}))
        for chunk in chunks:
            if chunk.text:
                yield event(choice({"content": chunk.text}))
            if chunk.finish_reason is not None:
                yield event(choice({}, chunk.finish_reason))
                if include_usage:
                    yield event([], chunk.usage, last=True)
        yield b"data: [DONE]\n\n"
    finally:
        chunks.close()  # frees the model at once when the client has gone


async def _in_thread(events: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """``events`` produced by a thread of their own, which stops at the next token once the
    client has gone.

    The model stays locked while its generator is suspended: a generator driven from the
    server's thread pool and abandoned on a disconnect would keep it locked until garbage
    collection; here the one thread that iterates it also closes it.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=0)
    gone = threading.Event()

    def put(item: bytes | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop has closed: nobody is listening any more
            gone.set()

    def produce() -> None:
        try:
            for event in events:
                if gone.is_set():
                    break
                put(event)
        except BaseException as exc:  # handed to the response, which ends the stream with it
            put(exc)
        finally:
            events.close()
            put(None)

    threading.Thread(target=produce, daemon=True, name="llm-stream").start()
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                # The status line is sent: the error can only be a last event, as OpenAI does.
                error = {"message": str(item), "type": "server_error", "param": None, "code": None}
                yield b"data: " + json.dumps({"error": error}).encode("utf-8") + b"\n\n"
                return
            yield item
    finally:
        gone.set()


def _usage(usage: Any) -> dict[str, Any]:
    return {
        **usage.to_dict(),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _model_card(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "cauce"}


def _check_model(requested: str, served: str) -> None:
    if requested != served:
        raise NotFound(
            f"The model {requested!r} does not exist; this server answers for {served!r}",
            details={"code": "model_not_found"},
        )


def _error(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    from fastapi.responses import JSONResponse

    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status_code=status,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def serve(
    llm: LocalLLM,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    model_name: str | None = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Serve ``llm`` on ``host:port`` until SIGINT or SIGTERM (blocks); ``announce`` is called
    once the port is held."""
    import uvicorn

    sock = _bind(host, port)
    if announce is not None:
        announce()
    config = uvicorn.Config(
        create_app(llm, model_name=model_name), log_level="warning", access_log=False
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def serve_model(
    uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    slots: int = 1,
    workspace: Workspace | None = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Load a registered GGUF model (``models:/smollm2/1``) and serve it under its model name,
    answering ``slots`` requests at once; ``announce`` is called once it is loaded and the port
    is held."""
    from cauce.genai.llms import LocalLLM
    from cauce.registry.models import load, resolve

    version = resolve(uri, workspace=workspace)
    llm = load(uri, workspace=workspace).unwrap()
    if not isinstance(llm, LocalLLM):
        raise InvalidInput(
            f"{uri} is a {version.flavor} model; only gguf models are served as an LLM"
        )
    llm = llm.with_slots(slots)
    serve(llm, host=host, port=port, model_name=version.name, announce=announce)


class LLMServer:
    """The API served from a background thread of this process (tests, the demo, notebooks).

    ``port=0`` takes a free port; ``url`` is the OpenAI ``base_url`` (``http://host:port/v1``).
    """

    def __init__(
        self,
        llm: LocalLLM,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
    ) -> None:
        self.llm = llm
        self.host = host
        self.port = port
        self.model_name = model_name or llm.name
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> LLMServer:
        """Start serving; return once the server accepts connections."""
        import uvicorn

        sock = self._socket = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.llm, model_name=self.model_name),
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="llm-server"
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise BackendError(f"the LLM server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
