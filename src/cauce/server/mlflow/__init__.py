"""MLflow wire compatibility: the MLflow client, pointed at ``cauce server``, works unchanged.

:func:`router` serves MLflow's REST API (``/api/2.0/mlflow/...``, and the same under
``/ajax-api/2.0/mlflow/...``) and its artifacts proxy (``/api/2.0/mlflow-artifacts/...``) over
Cauce's own SDK: experiments, runs, metrics, params, tags and logged models
(:mod:`.tracking`), the model registry (:mod:`.registry`), run files (:mod:`.artifacts`) and
a trace's info (``/api/3.0/mlflow/traces``, :mod:`.traces`; the spans come over OTLP).
What the MLflow client logs lands in the same rows as ``cauce.start_run`` writes, with the same
audit records and lineage edges. ``docs/mlflow.md`` lists the calls and how ids map.

Example::

    app.include_router(cauce.server.mlflow.router(lambda request: workspace))

and then ``MLFLOW_TRACKING_URI=http://host:port python train.py``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from cauce.server.mlflow.wire import MlflowError, Params, error_body, unsupported

if TYPE_CHECKING:
    from fastapi import APIRouter

    from cauce.server.mlflow.tracking import Handler
    from cauce.workspace import Workspace

__all__ = ["router"]

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
V3_PREFIXES = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
ARTIFACTS = ("/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow-artifacts/artifacts")
CHUNK = 1 << 20

_log = logging.getLogger(__name__)


def router(workspace_of: Callable[[Request], Workspace]) -> APIRouter:
    """MLflow's REST API and artifacts proxy, each request served in ``workspace_of(request)``.

    ``workspace_of`` is called once per request, in a worker thread; it may raise a
    ``CauceError`` (``Unauthorized``, ``Forbidden``, ``NotFound``), which is answered in MLflow's
    error shape. The audit records carry that workspace's ``user``.
    """
    from fastapi import APIRouter

    from cauce.server.mlflow import registry, traces, tracking

    api = APIRouter()
    routes = [
        (p, r) for p in PREFIXES for r in [*tracking.ROUTES, *registry.ROUTES, *traces.V2_ROUTES]
    ]
    routes += [(p, r) for p in V3_PREFIXES for r in traces.ROUTES]
    for prefix, (path, methods, handler) in routes:
        api.add_api_route(
            prefix + path,
            _endpoint(handler, workspace_of),
            methods=list(methods),
            include_in_schema=False,
        )
    api.add_api_route("/version", _version_endpoint(workspace_of), include_in_schema=False)
    for prefix in ARTIFACTS:
        api.add_api_route(
            prefix, _list_endpoint(workspace_of), methods=["GET"], include_in_schema=False
        )
        api.add_api_route(
            prefix + "/{path:path}",
            _download_endpoint(workspace_of),
            methods=["GET"],
            include_in_schema=False,
        )
        api.add_api_route(
            prefix + "/{path:path}",
            _upload_endpoint(workspace_of),
            methods=["PUT"],
            include_in_schema=False,
        )
    for prefix in (*PREFIXES, *V3_PREFIXES):  # last: only what no route above takes
        api.add_api_route(
            prefix + "/{path:path}",
            _unmapped_endpoint(workspace_of),
            methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            include_in_schema=False,
        )
    return api


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _error(exc: BaseException) -> Response:
    status, body = error_body(exc)
    if status >= 500 and not isinstance(exc, MlflowError):  # NOT_IMPLEMENTED is an answer
        _log.error("MLflow API call failed", exc_info=exc)
    return _json(status, body)


def _endpoint(handler: Handler, workspace_of: Callable[[Request], Workspace]) -> Any:
    from starlette.concurrency import run_in_threadpool

    async def endpoint(request: Request) -> Response:
        try:
            if request.method == "GET":
                params = Params.from_query(list(request.query_params.multi_items()))
            else:
                params = Params.from_body(await request.body())
            if request.path_params:
                params = Params({**params.values, **request.path_params})
            answer = await run_in_threadpool(_call, handler, workspace_of, request, params)
        except Exception as exc:  # every failure answers in MLflow's shape
            return _error(exc)
        return _json(200, answer)

    endpoint.__name__ = f"mlflow_{handler.__name__}"
    return endpoint


def _call(
    handler: Handler, workspace_of: Callable[[Request], Workspace], request: Request, p: Params
) -> dict[str, Any]:
    return handler(workspace_of(request), p)


def _unmapped_endpoint(workspace_of: Callable[[Request], Workspace]) -> Any:
    """An MLflow call Cauce does not map: NOT_IMPLEMENTED in MLflow's shape, which its client
    raises as an ``MlflowException`` naming the call (a 404 would read as a server fault)."""
    from starlette.concurrency import run_in_threadpool

    async def unmapped(request: Request) -> Response:
        try:
            await run_in_threadpool(workspace_of, request)  # the caller's credentials first
        except Exception as exc:
            return _error(exc)
        call = f"{request.method} {request.url.path}"
        return _error(unsupported(call, "; docs/mlflow.md lists the calls it serves"))

    return unmapped


def _version_endpoint(workspace_of: Callable[[Request], Workspace]) -> Any:
    from starlette.concurrency import run_in_threadpool

    from cauce.server.mlflow.traces import MLFLOW_VERSION

    async def version(request: Request) -> Response:
        try:
            await run_in_threadpool(workspace_of, request)  # the caller's credentials
        except Exception as exc:
            return _error(exc)
        return Response(MLFLOW_VERSION, media_type="text/plain")

    return version


def _list_endpoint(workspace_of: Callable[[Request], Workspace]) -> Any:
    from starlette.concurrency import run_in_threadpool

    from cauce.server.mlflow import artifacts

    async def list_artifacts(request: Request) -> Response:
        path = request.query_params.get("path") or ""
        try:
            answer = await run_in_threadpool(lambda: artifacts.listing(workspace_of(request), path))
        except Exception as exc:
            return _error(exc)
        return _json(200, answer)

    return list_artifacts


def _download_endpoint(workspace_of: Callable[[Request], Workspace]) -> Any:
    from starlette.background import BackgroundTask
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import FileResponse

    from cauce.server.mlflow import artifacts

    def fetch(request: Request, path: str) -> tuple[Path, str, bool]:
        ws = workspace_of(request)
        sha, name = artifacts.locate(ws, path)
        local, temporary = artifacts.read_to_file(ws, sha)
        return local, name, temporary

    async def download_artifact(request: Request, path: str) -> Response:
        try:
            local, name, temporary = await run_in_threadpool(fetch, request, path)
        except Exception as exc:
            return _error(exc)
        cleanup = BackgroundTask(local.unlink, missing_ok=True) if temporary else None
        return FileResponse(
            local,
            media_type="application/octet-stream",
            filename=name,
            content_disposition_type="attachment",
            background=cleanup,
        )

    return download_artifact


def _upload_endpoint(workspace_of: Callable[[Request], Workspace]) -> Any:
    from starlette.concurrency import run_in_threadpool

    from cauce.server.mlflow import artifacts

    async def upload_artifact(request: Request, path: str) -> Response:
        try:
            with tempfile.TemporaryDirectory(prefix="cauce-mlflow-") as tmp:
                local = Path(tmp) / "upload"
                with open(local, "wb") as out:
                    async for chunk in request.stream():
                        out.write(chunk)
                await run_in_threadpool(
                    lambda: artifacts.store_upload(workspace_of(request), path, local)
                )
        except Exception as exc:
            return _error(exc)
        return _json(200, {})

    return upload_artifact
