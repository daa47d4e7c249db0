"""The HTTP pieces the router and the workers share: plain ASGI on uvicorn.

Both scoring hops are raw ASGI applications rather than FastAPI ones: on the 2-core reference
machine FastAPI's routing and request objects cost ~170 µs per request, and the router must add
at most 1 ms over calling a deployment directly. They serve the same OpenAPI document
(:func:`openapi`), so clients and schemathesis see one API whichever hop they call.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cauce.errors import CauceError, PayloadTooLarge
from cauce.serving.codec import HEADER_LENGTH, OCTET_STREAM, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body; PayloadTooLarge as soon as it passes ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise _too_large(int(value), limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is {size} bytes or more; this endpoint accepts at most {limit}",
        details={"field": "body", "limit": limit},
    )


def header(scope: Scope, name: bytes) -> bytes | None:
    """One request header's value (names are lower case in ASGI)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a whole response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, value: Any, **kwargs: Any) -> None:
    """Send a JSON response."""
    await respond(send, status, json.dumps(value).encode(), **kwargs)


async def respond_error(send: Send, error: CauceError, path: str, **kwargs: Any) -> None:
    """Send the error with its status: ``{"error": {"code", "message", "details"}}``, or on
    the Open Inference Protocol's ``/v2`` paths its shape, ``{"error": "<message>", ...}``."""
    await respond_json(send, error.http_status, error_body(error, path), **kwargs)


async def lifespan(
    receive: Receive,
    send: Send,
    startup: Callable[[], Awaitable[None]] | None = None,
    shutdown: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Answer uvicorn's startup and shutdown messages, running the app's hooks."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if startup is not None:
                await startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if shutdown is not None:
                await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def disconnected(receive: Receive) -> None:
    """Return when the caller has gone (the ``http.disconnect`` message)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# Collections of the youngest generation once this many objects have been allocated (Python's
# default is 700): a relayed stream allocates thousands, so the default collects many times
# per stream.
GC_YOUNG_THRESHOLD = 50_000


def settle_gc() -> None:
    """Tune the garbage collector of a serving process that has started: what is alive now
    (modules, apps, models) is frozen out of every later collection, and collections come
    less often. A full collection of a process that has imported pandas, pyarrow and
    SQLAlchemy walks millions of objects: tens of milliseconds in the middle of a request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)


def error_schema() -> dict[str, Any]:
    """The JSON schema of Cauce's error body, ``{"error": {code, message, details}}``."""
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    }


def _v2_error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "string"},
            "details": {"type": "object"},
        },
    }


def _errors(schema: str) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    return {
        str(code): {"description": why, "content": content}
        for code, why in (
            (400, "the body cannot be read"),
            (404, "no such model"),
            (413, "the body is over the size limit"),
            (415, "unsupported content type"),
            (422, "the input does not match the model's signature"),
            (503, "no deployment can answer"),
        )
    }


def openapi(title: str) -> dict[str, Any]:
    """The scoring API as OpenAPI 3.1: MLflow's ``/invocations`` and Open Inference v2."""
    errors, v2_errors = _errors("Error"), _errors("V2Error")
    health = {"200": {"description": "yes"}, "503": {"description": "no"}}
    name = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    invocations_body = {
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                },
                "required": ["columns", "data"],
            },
            "dataframe_records": {"type": "array", "items": {"type": "object"}},
            "instances": {"type": "array"},
            "inputs": {},
            "params": {"type": "object"},
        },
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": {
            "/invocations": {
                "post": {
                    "summary": "Score (MLflow scoring protocol)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": invocations_body},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "predictions", "content": {"application/json": {}}},
                        **errors,
                    },
                }
            },
            "/ping": {"get": {"summary": "Liveness (MLflow)", "responses": health}},
            "/v2/health/live": {"get": {"summary": "Liveness (v2)", "responses": health}},
            "/v2/health/ready": {"get": {"summary": "Readiness (v2)", "responses": health}},
            "/v2/models/{name}": {
                "get": {
                    "summary": "Model metadata (v2)",
                    "parameters": name,
                    "responses": {"200": {"description": "metadata"}, **v2_errors},
                }
            },
            "/v2/models/{name}/ready": {
                "get": {"summary": "Model readiness (v2)", "parameters": name, "responses": health}
            },
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Score (Open Inference Protocol v2)",
                    "parameters": [
                        *name,
                        {
                            "name": HEADER_LENGTH,
                            "in": "header",
                            "required": False,
                            "description": "binary tensor data: the length of the JSON part",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["inputs"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "parameters": {"type": "object"},
                                        "inputs": {"type": "array", "items": tensor},
                                        "outputs": {"type": "array"},
                                    },
                                }
                            },
                            OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "outputs",
                            "content": {"application/json": {}, OCTET_STREAM: {}},
                        },
                        **v2_errors,
                    },
                }
            },
        },
        "components": {"schemas": {"Error": error_schema(), "V2Error": _v2_error_schema()}},
    }
