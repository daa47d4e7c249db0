"""The server's FastAPI app: every operation as a route under ``/api/v1``, blobs and workspaces.

Routes come from the operations registry (:mod:`cauce.operations`): each operation's path,
method and role, its arguments read from the path, the query string (GET, DELETE) or a JSON
object body, decoded into the function's own parameter types, and its result encoded from its
return type. The function runs in a worker thread with the request's workspace current and the
request's principal as the actor of every audit record it writes. Errors answer with the
error's HTTP status and ``{"error": {"code", "message", "details"}}``; a bad argument names its
field in ``details.field``.

``/w/NAME/...`` addresses a named workspace; the same routes without the prefix address the
server's home workspace (``default``). API tokens live in the home, so their routes
(``/api/v1/tokens``) answer there only.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse

from cauce.errors import CauceError, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from cauce.operations import OPERATIONS, Operation
from cauce.server import otlp, tokens, ui
from cauce.server.auth import ROLES, Authenticator, AuthSettings, Principal
from cauce.server.bodies import read_body
from cauce.server.context import actor, allowed, request_context
from cauce.server.paging import DEFAULT_PAGE, MAX_PAGE, run_page, take_page
from cauce.server.roles import require_admin_somewhere
from cauce.server.workspaces import DEFAULT, Workspaces
from cauce.serving.http import error_schema
from cauce.validation import load_json
from cauce.workspace import Workspace, enter, using

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("cauce.server")

# The modules whose functions are operations; importing them fills the registry.
OPERATION_MODULES = (
    "cauce.tracking.experiments",
    "cauce.tracking.runs",
    "cauce.tracking.search",
    "cauce.tracking.series",
    "cauce.tracking.artifacts",
    "cauce.lineage.graph",
    "cauce.lineage.audit",
    "cauce.registry.models",
    "cauce.registry.logging",
    "cauce.registry.card",
    "cauce.registry.evaluations",
    "cauce.registry.gates",
    "cauce.data.assets",
    "cauce.data.checks",
    "cauce.pipelines.records",
    "cauce.pipelines.runs",
    "cauce.specs",
    "cauce.serving.endpoints",
    "cauce.serving.keys",
    "cauce.serving.metrics",
    "cauce.serving.rollouts",
    "cauce.monitoring.profiles",
    "cauce.monitoring.monitors",
    "cauce.monitoring.alerts",
    "cauce.monitoring.actions.queue",
    "cauce.automation.schedules",
    "cauce.genai.prompts",
    "cauce.genai.connections",
    "cauce.genai.tracing",
    "cauce.genai.catalog",
    "cauce.genai.indexes.records",
    "cauce.genai.indexes.registry",
    "cauce.genai.indexes.quarantine",
    "cauce.genai.flows",
    "cauce.genai.batches",
    "cauce.genai.evals.runs",
    "cauce.genai.evals.gates",
)
API = "/api/v1"
MAX_UPLOAD_BYTES = 5 * 1024**3  # one blob
MAX_BODY_BYTES = 32 * 1024**2  # the JSON arguments of one operation
SIGNED_URL_S = 300  # how long a signed download URL of an S3 artifact store is valid


def operations() -> dict[str, Operation]:
    """Every operation, their modules imported."""
    for module in OPERATION_MODULES:
        importlib.import_module(module)
    return OPERATIONS


def create_app(
    home: Workspace, *, host: str = "127.0.0.1", max_upload: int = MAX_UPLOAD_BYTES
) -> ASGIApp:
    """The ASGI app of a server on ``host`` whose home workspace is ``home``.

    Authentication is off only on a loopback host with no API token and no OIDC issuer (see
    cauce.server.auth); then the server's own user acts for every request.
    """
    from starlette.exceptions import HTTPException

    from cauce import __version__
    from cauce.server import mlflow

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.workspaces.close()

    app = FastAPI(
        lifespan=lifespan,
        title="Cauce",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.state.workspaces = Workspaces(home)
    authenticator = Authenticator(home, AuthSettings.from_settings(home.settings, host=host))
    log.info(authenticator.describe())
    app.state.authenticator = authenticator
    app.state.max_upload = max_upload
    schemas: dict[str, Any] = {}
    for op in operations().values():
        app.add_api_route(
            API + op.path,
            _endpoint(op),
            methods=[op.method],
            name=op.name,
            summary=(op.func.__doc__ or op.name).strip().splitlines()[0],
            openapi_extra=_openapi(op, schemas),
            tags=[op.name.split(".")[0]],
            operation_id=op.name.replace(".", "_"),
        )
    _with_schemas(app, schemas)
    _add_blob_routes(app)
    _add_workspace_routes(app)
    _add_token_routes(app)
    app.include_router(mlflow.router(_mlflow_workspace))
    otlp.add_routes(app, MAX_BODY_BYTES)
    ui.add_routes(app)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(CauceError)
    async def cauce_error(request: Request, exc: CauceError) -> Response:
        if _is_page(request):
            return ui.pages.error_page(request, exc)
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if _is_page(request) and exc.status_code == 404:
            return ui.pages.error_page(request, NotFound(f"there is no page {request.url.path}"))
        return _json({"error": {"code": code, "message": message, "details": {}}}, exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error answering %s %s", request.method, request.url.path)
        if _is_page(request):
            shown = CauceError(
                "Something went wrong on the server",
                code="internal-error",
                hint="the server's log has what went wrong; the page may work if reloaded",
            )
            return ui.pages.error_page(request, shown)
        body = {"error": {"code": "internal-error", "message": "internal error", "details": {}}}
        return _json(body, 500)

    return Gate(app, authenticator)


def _is_page(request: Request) -> bool:
    """Whether a request is for a UI page (answered with a page), not its assets or data."""
    path = request.scope["path"]
    return path.startswith("/ui") and not path.startswith(ui.STATIC_PREFIX) and path not in ui.DATA


class Gate:
    """ASGI middleware in front of every route: ``/w/NAME/rest`` is ``/rest`` in workspace NAME,
    and the request's credentials are checked before any route reads it (only ``/health``, the
    UI's sign-in, sign-out and assets answer without them). The principal waits in the
    request's state for the route's role check.

    A browser sends the token in the UI's cookie: it counts as the Authorization header, and
    a write sent with it must carry htmx's ``HX-Request`` header (see :mod:`cauce.server.ui`).
    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator):
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        name = DEFAULT
        if path.startswith("/w/"):
            name, _, rest = path[3:].partition("/")
            scope = {**scope, "path": "/" + rest, "raw_path": ("/" + rest).encode()}
        state = scope.setdefault("state", {})
        state["workspace"] = name
        if not _open(scope["path"]):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            client = scope.get("client") or ("unknown", 0)
            try:
                headers = _cookie_credentials(headers, scope["method"])
                state["principal"] = self.authenticator.authenticate(headers, client[0])
            except CauceError as exc:
                if scope["path"].startswith("/ui") and exc.http_status == 401:
                    base = "" if name == DEFAULT else f"/w/{name}"
                    await RedirectResponse(f"{base}/ui/login", 303)(scope, receive, send)
                    return
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _open(path: str) -> bool:
    """The paths that answer without credentials."""
    return path in ("/health", "/ui/login", "/ui/logout") or path.startswith(ui.STATIC_PREFIX)


def _cookie_credentials(headers: dict[str, str], method: str) -> dict[str, str]:
    """The request's headers, with the UI's cookie as its credentials when it has no
    Authorization header; a write on the cookie alone must come from the UI (htmx)."""
    if "authorization" in headers or "cookie" not in headers:
        return headers
    from http.cookies import CookieError, SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers["cookie"])
    except CookieError:
        return headers
    token = jar.get(ui.TOKEN_COOKIE)
    if token is None:
        return headers
    if method not in ("GET", "HEAD") and headers.get("hx-request") != "true":
        raise Forbidden(
            "a write signed in by the UI's cookie must come from the UI",
            hint="send the token as Authorization: Bearer <token> instead",
        )
    return {**headers, "authorization": f"Bearer {token.value}"}


def _mlflow_workspace(request: Request) -> Workspace:
    # Called by the MLflow routes in the worker thread (a copied context) that then serves the
    # request: the workspace and principal set here hold for that call only.
    role = "viewer" if request.method in ("GET", "HEAD") else "editor"
    ws, principal = request_context(request, role)
    enter(ws, principal)
    return ws


def _endpoint(op: Operation) -> Callable[[Request], Any]:
    def run(ws: Workspace, principal: str, kwargs: dict[str, Any]) -> Any:
        with using(ws, principal):
            return op.func(**kwargs, workspace=ws)

    async def endpoint(request: Request) -> Response:
        ws, principal = request_context(request, op.role)
        values: dict[str, Any] = dict(request.path_params)
        if op.method in ("GET", "DELETE"):
            values.update(_query_args(op, request))
        else:
            body = await _json_object(request)
            clash = sorted(set(body) & set(values))
            if clash:
                raise InvalidInput(
                    f"{clash[0]} is given by the path; leave it out of the body",
                    details={"field": clash[0]},
                )
            values.update(body)
        if op.paged:
            start, size, query = take_page(values)
            kwargs = op.decode_args(values)
            page = await run_in_threadpool(
                run_page, op, lambda k: run(ws, principal, k), kwargs, start, size, query
            )
            return _json(page)
        kwargs = op.decode_args(values)
        claimed = kwargs.get("actor") if op.method != "GET" else None
        if claimed is not None and claimed != principal:
            # An audit actor a client names (automation acting for someone) is recorded beside
            # the authenticated principal, never instead of it.
            kwargs["actor"] = f"{principal} (as {claimed})"
        result = await run_in_threadpool(run, ws, principal, kwargs)
        if op.returns is None:
            return Response(status_code=204)
        return _json(op.encode_result(result))

    return endpoint


# -- OpenAPI ------------------------------------------------------------------------------------


def _openapi(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    """The operation's parameters, body and answers, from its type hints."""

    def schema(name: str, mode: str = "validation") -> dict[str, Any]:
        found = dict(op.adapter(name).json_schema(mode=mode, ref_template=_REF))
        schemas.update(found.pop("$defs", {}))
        return found

    required = set(op.required)
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema(name)}
        for name in op.path_params
    ]
    rest = [name for name in op.params if name not in op.path_params]
    extra: dict[str, Any] = {}
    paging = {
        "page_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_PAGE,
            "default": DEFAULT_PAGE,
        },
        "page_token": {"type": "string"},
    }
    if op.method in ("GET", "DELETE"):
        parameters += [
            {"name": name, "in": "query", "required": name in required, "schema": schema(name)}
            for name in rest
        ]
        if op.paged:
            parameters += [
                {"name": name, "in": "query", "required": False, "schema": kind}
                for name, kind in paging.items()
            ]
    else:
        body = {
            "type": "object",
            "properties": {name: schema(name) for name in rest} | (paging if op.paged else {}),
            "additionalProperties": False,
        }
        needed = [name for name in rest if name in required]
        if needed:
            body["required"] = needed
        extra["requestBody"] = {
            "required": bool(needed),
            "content": {"application/json": {"schema": body}},
        }
    errors = {
        "description": "an error",
        "content": {"application/json": {"schema": error_schema()}},
    }
    if op.returns is None:
        answers: dict[str, Any] = {"204": {"description": "done"}}
    else:
        answer = schema("return", "serialization")
        if op.paged:
            answer = {
                "type": "object",
                "required": ["items", "next_page_token"],
                "properties": {
                    "items": answer,
                    "next_page_token": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
            }
        answers = {
            "200": {
                "description": "the result",
                "content": {"application/json": {"schema": answer}},
            }
        }
    answers.update({"4XX": errors, "5XX": errors})
    # FastAPI adds a 200 of its own for an endpoint without a response model: replaced here.
    extra.update(parameters=parameters, responses=answers)
    return extra


_REF = "#/components/schemas/{model}"


def _with_schemas(app: FastAPI, schemas: dict[str, Any]) -> None:
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if "204" in responses or "201" in responses:
                        responses.pop("200", None)
            document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _query_args(op: Operation, request: Request) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name in request.query_params:
        values = request.query_params.getlist(name)
        args[name] = values[0] if len(values) == 1 else values
        if name in op.params and len(values) == 1:
            # A list parameter given once is a list of one.
            try:
                op.adapter(name).validate_python(values[0])
            except Exception:
                args[name] = values
    return args


async def _json_object(request: Request) -> dict[str, Any]:
    from cauce.errors import BadRequest, UnsupportedMediaType

    raw = await read_body(request, MAX_BODY_BYTES)
    if not raw:
        return {}
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if kind != "application/json":
        raise UnsupportedMediaType(f"the body must be application/json, not {kind}")
    body = load_json(raw)
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def _json(content: Any, status: int = 200) -> Response:
    # NaN and infinities are legal metric values: written as Python's json writes them.
    text = json.dumps(content, separators=(",", ":"), allow_nan=True)
    return Response(text, status_code=status, media_type="application/json")


def error_response(exc: CauceError) -> Response:
    """The answer for a CauceError: its status and ``{"error": {code, message, details}}``."""
    body = exc.to_dict()
    if exc.hint:
        body["error"]["details"] = {**body["error"]["details"], "hint": exc.hint}
    response = _json(body, exc.http_status)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


# -- blobs --------------------------------------------------------------------------------------


def _add_blob_routes(app: FastAPI) -> None:
    @app.head(API + "/blobs/{sha256}", include_in_schema=False)
    async def has_blob(request: Request, sha256: str) -> Response:
        ws, _ = request_context(request, "viewer")
        if not await run_in_threadpool(ws.artifacts.exists, sha256):
            raise NotFound(f"artifact {sha256} is not stored")
        return Response(status_code=200)

    @app.get(API + "/blobs/{sha256}", summary="Download a stored artifact by its sha256")
    async def get_blob(request: Request, sha256: str) -> Response:
        ws, _ = request_context(request, "viewer")
        store = ws.artifacts
        if not await run_in_threadpool(store.exists, sha256):
            raise NotFound(f"artifact {sha256} is not stored")
        if store.is_local:
            return FileResponse(store.path_of(sha256), media_type="application/octet-stream")
        if ws.settings.server_signed_urls and "s3" in _protocols(store):
            # Straight from object storage: a URL signed for a few minutes, no bytes through here.
            url = await run_in_threadpool(store.fs.sign, store.path_of(sha256), SIGNED_URL_S)
            return RedirectResponse(url, status_code=307)
        handle = await run_in_threadpool(store.fs.open, store.path_of(sha256), "rb")

        def chunks() -> Any:
            with handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    @app.put(API + "/blobs/{sha256}", status_code=201, summary="Upload an artifact's content")
    async def put_blob(request: Request, sha256: str) -> Response:
        ws, _ = request_context(request, "editor")
        limit = request.app.state.max_upload
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}")
        ws.artifacts.path_of(sha256)  # InvalidInput for a malformed digest
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(prefix="cauce-upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"the upload is over the limit of {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise InvalidInput(
                    f"the uploaded content hashes to {digest.hexdigest()}, not {sha256}",
                    details={"field": "sha256"},
                )
            media_type = request.headers.get("content-type") or "application/octet-stream"
            await run_in_threadpool(lambda: ws.artifacts.put_file(tmp, media_type=media_type))
        finally:
            os.unlink(tmp)
        return Response(status_code=201)


def _protocols(store: Any) -> tuple[str, ...]:
    protocol = store.fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


# -- workspaces ---------------------------------------------------------------------------------


def _add_workspace_routes(app: FastAPI) -> None:
    @app.get(API + "/workspaces", summary="The server's workspaces")
    async def list_workspaces(request: Request) -> Response:
        allowed(request, request.state.workspace, "viewer")
        return _json({"workspaces": request.app.state.workspaces.names()})

    @app.post(API + "/workspaces", status_code=201, summary="Create a workspace (admin)")
    async def create_workspace(request: Request) -> Response:
        allowed(request, "*", "admin")
        body = await _json_object(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise InvalidInput("name: a workspace name is required", details={"field": "name"})
        await run_in_threadpool(request.app.state.workspaces.create, name)
        return _json({"name": name}, 201)


# -- tokens -------------------------------------------------------------------------------------

_TOKEN: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name", "prefix", "roles", "created_at", "state"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "prefix": {"type": "string"},
        "roles": {"type": "object", "additionalProperties": {"enum": list(ROLES)}},
        "created_at": {"type": "integer"},
        "expires_at": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "revoked_at": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "user": {"type": "string"},
        "state": {"enum": ["active", "expired", "revoked"]},
    },
}
_TOKENS = {
    "type": "object",
    "required": ["tokens"],
    "properties": {"tokens": {"type": "array", "items": _TOKEN}},
}
_CREATE = {
    "name": {"type": "string"},
    "role": {"enum": list(ROLES)},
    "workspace": {"type": "string", "default": DEFAULT},
    "expires": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]},
}
_GRANT = {
    "role": {"anyOf": [{"enum": list(ROLES)}, {"type": "null"}]},
    "workspace": {"type": "string"},
}
_SECRET = {"token": {"type": "string"}}


def _token_openapi(
    path: str, status: str, answer: dict[str, Any], body: dict[str, Any] | None, *required: str
) -> dict[str, Any]:
    """A token route's parameters, answers and JSON body, for the OpenAPI document."""
    errors = {
        "description": "an error",
        "content": {"application/json": {"schema": error_schema()}},
    }
    named = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    extra: dict[str, Any] = {
        "parameters": named,
        "responses": {
            status: {
                "description": "the result",
                "content": {"application/json": {"schema": answer}},
            },
            "4XX": errors,
            "5XX": errors,
        },
    }
    if body is not None:
        schema = {"type": "object", "properties": body, "additionalProperties": False}
        if required:
            schema["required"] = list(required)
        extra["requestBody"] = {
            "required": bool(required),
            "content": {"application/json": {"schema": schema}},
        }
    return extra


def _token_admin(request: Request) -> tuple[Principal, str]:
    """The principal of a token route and the actor its audit records name; Forbidden, before
    anything in the request is read, unless it is admin of some workspace."""
    if request.state.workspace != DEFAULT:
        raise NotFound(f"tokens live in the server's home workspace: {API}/tokens, without /w/NAME")
    principal: Principal = request.state.principal
    require_admin_somewhere(principal)
    return principal, actor(request)


async def _fields(request: Request, *required: str, optional: tuple[str, ...] = ()) -> Any:
    """The request's JSON object body, every field in ``required`` given, no other but
    ``optional``."""
    body = await _json_object(request)
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise InvalidInput(
            f"unknown field {', '.join(unknown)} for {request.method} {request.url.path}",
            details={"field": unknown[0], "known": sorted({*required, *optional})},
        )
    missing = [name for name in required if name not in body]
    if missing:
        raise InvalidInput(f"{missing[0]} is required", details={"field": missing[0]})
    return body


def _add_token_routes(app: FastAPI) -> None:
    def tokens_json(found: list[tokens.TokenInfo]) -> Response:
        return _json({"tokens": [t.to_dict() for t in found]})

    route = _token_route(app)

    @route("POST", "/tokens", "201", _TOKEN, _CREATE, "name", "role")
    async def create_token(request: Request) -> Response:
        """Create an API token; the answer holds it, once (admin)."""
        principal, actor = _token_admin(request)
        body = await _fields(request, "name", "role", optional=("workspace", "expires"))
        info, token = await run_in_threadpool(
            lambda: tokens.create_token(
                body["name"],
                body["role"],
                workspace_name=body.get("workspace", DEFAULT),
                expires=body.get("expires"),
                home=request.app.state.workspaces.home,
                actor=actor,
                principal=principal,
            )
        )
        return _json({**info.to_dict(), "token": token}, 201)

    @route("GET", "/tokens", "200", _TOKENS, None)
    async def list_tokens(request: Request) -> Response:
        """The API tokens the caller may manage, never their secrets (admin)."""
        principal, _ = _token_admin(request)
        home = request.app.state.workspaces.home
        found = await run_in_threadpool(lambda: tokens.list_tokens(home=home, principal=principal))
        return tokens_json(found)

    @route("POST", "/tokens/{name_or_id}/grants", "200", _TOKENS, _GRANT, "role", "workspace")
    async def grant_role(request: Request) -> Response:
        """Give tokens (by id, or all of a name) a role in a workspace, or none (admin)."""
        principal, actor = _token_admin(request)
        name_or_id = _not_a_secret(request.path_params["name_or_id"])
        body = await _fields(request, "role", "workspace")
        changed = await run_in_threadpool(
            lambda: tokens.grant_role(
                name_or_id,
                body["role"],
                workspace_name=body["workspace"],
                home=request.app.state.workspaces.home,
                actor=actor,
                principal=principal,
            )
        )
        return tokens_json(changed)

    @route("POST", "/tokens/{name_or_id}/revoke", "200", _TOKENS, None)
    async def revoke_token(request: Request) -> Response:
        """Revoke tokens (by id, or all of a name) (admin)."""
        principal, actor = _token_admin(request)
        name_or_id = _not_a_secret(request.path_params["name_or_id"])
        home = request.app.state.workspaces.home
        revoked = await run_in_threadpool(
            lambda: tokens.revoke_token(name_or_id, home=home, actor=actor, principal=principal)
        )
        return tokens_json(revoked)

    @route("POST", "/tokens/revoke", "200", _TOKENS, _SECRET, "token")
    async def revoke_secret(request: Request) -> Response:
        """Revoke the token given in the body: a leaked one (admin)."""
        principal, actor = _token_admin(request)
        secret = (await _fields(request, "token"))["token"]
        if not isinstance(secret, str) or not secret.startswith(tokens.PREFIX):
            raise InvalidInput(
                f"token must be an API token, which starts with {tokens.PREFIX!r}",
                details={"field": "token"},
            )
        home = request.app.state.workspaces.home
        revoked = await run_in_threadpool(
            lambda: tokens.revoke_token(secret, home=home, actor=actor, principal=principal)
        )
        return tokens_json(revoked)


def _token_route(app: FastAPI) -> Callable[..., Callable[[Any], Any]]:
    """A decorator that adds a token route: its summary is the function's docstring."""

    def route(
        method: str,
        path: str,
        status: str,
        answer: dict[str, Any],
        body: dict[str, Any] | None,
        *required: str,
    ) -> Callable[[Any], Any]:
        def add(endpoint: Any) -> Any:
            app.add_api_route(
                API + path,
                endpoint,
                methods=[method],
                status_code=int(status),
                summary=endpoint.__doc__,
                tags=["tokens"],
                openapi_extra=_token_openapi(path, status, answer, body, *required),
            )
            return endpoint

        return add

    return route


def _not_a_secret(name_or_id: str) -> str:
    """``name_or_id``, unless it is a token itself: one never goes in a URL (proxies log URLs);
    refused without repeating it."""
    if name_or_id.startswith(tokens.PREFIX):
        raise InvalidInput(
            f'a token itself never goes in a URL: send it as {{"token": ...}} to '
            f"POST {API}/tokens/revoke (and treat it as leaked)",
            details={"field": "name_or_id"},
        )
    return name_or_id
