"""What every page shares: templates, the request's context, rendering, errors, sign-in, assets."""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request  # at run time: FastAPI reads the routes' annotations
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from cauce.errors import CauceError, NotFound
from cauce.server.context import actor, request_context
from cauce.server.formats import duration, took
from cauce.server.roles import RANK
from cauce.server.workspaces import DEFAULT
from cauce.workspace import Workspace, using

if TYPE_CHECKING:
    import jinja2
    from fastapi import FastAPI

STATIC_PREFIX = "/ui/static/"
DATA = frozenset({"/ui/series"})  # UI routes that answer JSON (errors too), not pages
TOKEN_COOKIE = "cauce_token"
HERE = Path(__file__).parent
STATIC = HERE / "static"
# A year: the cookie lasts as long as the token it holds is valid; the server checks that.
COOKIE_MAX_AGE_S = 365 * 24 * 3600


@dataclass(frozen=True)
class Context:
    """What every template gets: where the UI lives, who looks, and what they may do."""

    base: str  # "" for the home workspace, "/w/NAME" for a named one
    workspace: str
    user: str
    can_edit: bool
    signed_in: bool  # by the UI's cookie: a sign-out link is shown


@functools.cache
def templates() -> jinja2.Environment:
    """The Jinja2 environment of the UI's templates (autoescaped; an unknown name fails)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["number"] = number
    env.filters["duration"] = duration
    env.filters["took"] = took
    env.filters["yaml"] = as_yaml
    env.filters["column_label"] = lambda column: (column, column.partition(".")[2])
    return env


def when(ms: int | None) -> str:
    """A time in milliseconds as ``2026-12-04 21:20:05`` (UTC); empty for none."""
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def number(value: Any) -> str:
    """A metric value, short: 4 significant digits (a whole number with thousands separators
    from 10,000), NaN and infinities spelled out."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if 1e4 <= abs(value) < 1e15:
        return f"{value:,.0f}"  # 12,730 ms, not 1.273e+04
    return f"{value:.4g}"


def as_yaml(value: Any) -> str:
    """A spec as the YAML a user writes for ``cauce apply -f``."""
    import yaml

    return str(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))


def context(request: Request, user: str) -> Context:
    """The template context of a request whose principal may view its workspace."""
    name = request.state.workspace
    held = request.state.principal.role_in(name)
    return Context(
        base=base_of(request),
        workspace=name,
        user=user,
        can_edit=held is not None and RANK[held] >= RANK["editor"],
        signed_in=TOKEN_COOKIE in request.cookies,
    )


def render(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A template rendered as a page (or a part of one, for htmx)."""
    return HTMLResponse(templates().get_template(template).render(**values), status_code=status)


View = Callable[[Workspace, Context], Response]


def page(
    role: str, view: Callable[[Request], View], *, form: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """A route that renders ``view(request)`` with the request's workspace current and its
    principal acting (in a worker thread: the SDK blocks), once its role allows ``role``;
    ``form``: the request's form is read first (:func:`form_fields`)."""

    async def route(request: Request) -> Response:
        ws, user = request_context(request, role)
        ctx = context(request, user)
        if form:
            fields = await request.form()
            request.state.form = {k: v for k, v in fields.items() if isinstance(v, str)}
        shown = view(request)

        def run() -> Response:
            with using(ws, user):
                return shown(ws, ctx)

        return await run_in_threadpool(run)

    return route


def form_fields(request: Request) -> dict[str, str]:
    """The text fields of the form a ``page(..., form=True)`` route was sent."""
    return dict(request.state.form)


def error_page(request: Request, exc: CauceError) -> Response:
    """An error as a readable page (or, for htmx, as the part it swaps in)."""
    name = getattr(request.state, "workspace", DEFAULT)
    base = base_of(request)
    if exc.http_status == 401:
        return RedirectResponse(f"{base}/ui/login", status_code=303)
    if getattr(request.state, "principal", None) is not None:
        # Who is signed in, and what they may do there, as on every other page.
        ctx = context(request, actor(request))
    else:
        ctx = Context(base, name, "", False, TOKEN_COOKIE in request.cookies)
    if request.headers.get("hx-request") == "true":
        # A part of a page asked for: the message goes to the page's message slot, and the
        # part stays as it was (a form keeps what was typed in it).
        answer = render("error_part.html", exc.http_status, error=exc)
        answer.headers.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return answer
    return render("error.html", exc.http_status, error=exc, section="", ctx=ctx)


def add_routes(app: FastAPI) -> None:
    """Mount the UI on ``app``: its pages, sign-in, and its assets."""
    from cauce.server.ui import (
        data,
        genai,
        lineage,
        monitoring,
        pipelines,
        registry,
        serving,
        tracking,
    )

    @app.get("/ui/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> Response:
        found = (STATIC / path).resolve()
        if not found.is_relative_to(STATIC.resolve()) or not found.is_file():
            raise NotFound(f"no UI asset {path!r}")
        # Vendored files carry their version in their name: they never change under it.
        cache = "public, max-age=31536000, immutable" if "/vendor/" in str(found) else "no-cache"
        return FileResponse(found, headers={"Cache-Control": cache})

    @app.get("/ui", include_in_schema=False)
    async def home(request: Request) -> Response:
        return RedirectResponse(f"{base_of(request)}/ui/experiments", status_code=303)

    @app.get("/ui/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return render("login.html", base=base_of(request), error=None)

    @app.post("/ui/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token") or "").strip()
        authenticator = request.app.state.authenticator
        client = request.client.host if request.client else "unknown"
        try:
            authenticator.authenticate({"authorization": f"Bearer {token}"}, client)
        except CauceError as exc:
            return render("login.html", exc.http_status, base=base_of(request), error=exc.message)
        answer = RedirectResponse(f"{base_of(request)}/ui/experiments", status_code=303)
        answer.set_cookie(
            TOKEN_COOKIE,
            token,
            max_age=COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return answer

    @app.post("/ui/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        answer = RedirectResponse(f"{base_of(request)}/ui/login", status_code=303)
        answer.delete_cookie(TOKEN_COOKIE, path="/")
        return answer

    tracking.add_routes(app)
    registry.add_routes(app)
    data.add_routes(app)
    serving.add_routes(app)
    monitoring.add_routes(app)
    lineage.add_routes(app)
    pipelines.add_routes(app)
    genai.add_routes(app)


def base_of(request: Request) -> str:
    """Where the request's workspace lives: "" for the home, ``/w/NAME`` for a named one."""
    name = getattr(request.state, "workspace", DEFAULT)
    return "" if name == DEFAULT else f"/w/{name}"
