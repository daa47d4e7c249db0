"""OpenTelemetry's trace receiver: ``POST /v1/traces`` (``/w/NAME/v1/traces`` for a named
workspace), OTLP/HTTP in protobuf or JSON, gzipped or not, as any OpenTelemetry SDK or
Collector exports it (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://host:port/v1/traces``).

An editor's token goes in the exporter's headers (``Authorization=Bearer ...``). The request's
spans are stored all or none (:func:`cauce.genai.tracing.otlp.record_otlp`); the answer is an
empty ``ExportTraceServiceResponse`` in the request's encoding, and a refusal is Cauce's error
shape, which an exporter logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request  # at run time: FastAPI reads the route's annotations
from starlette.responses import Response

from cauce.errors import UnsupportedMediaType
from cauce.server.bodies import read_body
from cauce.server.context import request_context
from cauce.workspace import using

if TYPE_CHECKING:
    from fastapi import FastAPI

PATH = "/v1/traces"


def add_routes(app: FastAPI, limit: int) -> None:
    """The receiver's route; a request's body may unpack to ``limit`` bytes."""

    @app.post(PATH, include_in_schema=False)
    async def receive_traces(request: Request) -> Response:
        from cauce.genai.tracing.otlp import JSON, PROTOBUF, record_otlp

        ws, principal = request_context(request, "editor")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in (*PROTOBUF, JSON):  # before the body is read
            raise UnsupportedMediaType(
                f"an OTLP body is {PROTOBUF[0]} or {JSON}, not {kind or 'untyped'}"
            )
        body = await read_body(request, limit, gzip=True)

        def record() -> int:
            with using(ws, principal):
                return record_otlp(body, kind, workspace=ws)

        await run_in_threadpool(record)
        # An empty ExportTraceServiceResponse: every span was taken.
        if kind == JSON:
            return Response("{}", media_type=JSON)
        return Response(b"", media_type=PROTOBUF[0])
