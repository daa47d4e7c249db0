"""Serving pages: endpoints, and an endpoint's deployments with their traffic split, what its
routers measured (requests, errors, latency over the last minutes, from the windows they store
every second), its traffic history and its rollout: every decision with the values measured,
refreshed every few seconds while it runs, promoted or aborted by an editor from the page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from cauce.errors import NotFound
from cauce.server.ui.pages import Context, View, form_fields, page, render
from cauce.store import now_ms
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

MEASURED_OVER_MS = 5 * 60 * 1000  # the routers' measurements shown: the last five minutes


def add_routes(app: FastAPI) -> None:
    """The serving pages."""
    app.add_api_route("/ui/endpoints", page("viewer", endpoints), include_in_schema=False)
    app.add_api_route("/ui/endpoints/{name}", page("viewer", endpoint), include_in_schema=False)
    app.add_api_route(
        "/ui/endpoints/{name}/rollout", page("viewer", rollout_part), include_in_schema=False
    )
    app.add_api_route(
        "/ui/endpoints/{name}/rollout/{action}",
        page("editor", rollout_action, form=True),
        methods=["POST"],
        include_in_schema=False,
    )


def endpoints(request: Request) -> View:
    """Every endpoint with its deployments' traffic."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.serving.endpoints import list_endpoints

        return render("endpoints.html", ctx=ctx, endpoints=list_endpoints(), section="endpoints")

    return view


def endpoint(request: Request) -> View:
    """One endpoint: deployments, traffic, measurements, history, rollout."""
    name = request.path_params["name"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.serving.endpoints import get_endpoint, traffic_changes
        from cauce.serving.metrics import summarize

        found = get_endpoint(name)
        until = now_ms()
        measured = {
            d.name: summarize(name, d.name, until - MEASURED_OVER_MS, until)
            for d in found.deployments
        }
        return render(
            "endpoint.html",
            ctx=ctx,
            endpoint=found,
            measured=measured,
            minutes=MEASURED_OVER_MS // 60_000,
            history=list(reversed(traffic_changes(name)))[:20],
            name=name,
            **_rollout(name),
            section="endpoints",
        )

    return view


def rollout_part(request: Request) -> View:
    """The rollout part of the endpoint's page (htmx polls it while the rollout runs)."""
    name = request.path_params["name"]

    def view(ws: Workspace, ctx: Context) -> Response:
        shown = _rollout(name)
        answer = render("endpoint_rollout.html", ctx=ctx, name=name, **shown)
        if shown["rollout"] is None or shown["rollout"].state != "running":
            # It ended (or paused) since the page was drawn: draw the whole page again, the
            # traffic it moved included; a page whose rollout does not run polls nothing.
            answer.headers["HX-Refresh"] = "true"
        return answer

    return view


def rollout_action(request: Request) -> View:
    """An editor's ``promote`` (resume at the next stage), ``promote-full`` or ``abort``."""
    name = request.path_params["name"]
    action = request.path_params["action"]
    fields = form_fields(request)

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.serving import rollouts

        if action == "promote":
            rollouts.promote(name)
        elif action == "promote-full":
            rollouts.promote(name, full=True)
        elif action == "abort":
            rollouts.abort(name, reason=fields.get("reason", "").strip() or "aborted in the UI")
        else:
            raise NotFound(f"a rollout has no action {action!r}: promote, promote-full or abort")
        # The traffic moved with it: the whole page is drawn again.
        answer = render("endpoint_rollout.html", ctx=ctx, name=name, **_rollout(name))
        answer.headers["HX-Refresh"] = "true"
        return answer

    return view


def _rollout(name: str) -> dict[str, Any]:
    from cauce.serving.rollouts import status

    try:
        found = status(name)
    except NotFound:
        return {"rollout": None}
    return {"rollout": found}
