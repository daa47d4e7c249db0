"""GenAI pages: prompts (a prompt's versions with their labels, what changed between two of
them as a coloured unified diff, the messages of one, every label move), flows with their
versions and the traces of their runs, and indexes with their versions (the current one, what
each holds, what a refresh skipped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from cauce.errors import InvalidInput
from cauce.server.ui.pages import Context, View, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request


def add_routes(app: FastAPI) -> None:
    """The GenAI pages."""
    app.add_api_route("/ui/prompts", page("viewer", prompts), include_in_schema=False)
    app.add_api_route("/ui/prompts/{name}", page("viewer", prompt), include_in_schema=False)
    app.add_api_route("/ui/flows", page("viewer", flows), include_in_schema=False)
    app.add_api_route("/ui/flows/{name}", page("viewer", flow), include_in_schema=False)
    app.add_api_route("/ui/indexes", page("viewer", indexes), include_in_schema=False)
    app.add_api_route("/ui/indexes/{name}", page("viewer", index), include_in_schema=False)


def prompts(request: Request) -> View:
    """Every prompt with its latest version and labels."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.prompts import list_prompts

        return render("prompts.html", ctx=ctx, prompts=list_prompts(), section="prompts")

    return view


def prompt(request: Request) -> View:
    """A prompt: its versions, the diff of two (``a`` and ``b``: numbers or labels; the last
    two by default), the messages of ``b``, the label history."""
    name = request.path_params["name"]
    query = request.query_params

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.prompts import diff, get_prompt, label_history, load, versions

        found = get_prompt(name)
        latest = found.latest_version
        if not latest:  # created from MLflow, its first version not registered yet
            return render("prompt.html", ctx=ctx, prompt=found, versions=[], shown=None,
                          history=[], section="prompts")  # fmt: skip
        a = query.get("a") or str(max(1, latest - 1))
        b = query.get("b") or str(latest)
        for field, value in (("a", a), ("b", b)):
            if not value.replace("-", "").replace("_", "").isalnum():
                raise InvalidInput(f"{field} is a version or a label, not {value!r}",
                                   details={"field": field})  # fmt: skip
        shown = load(f"prompts:/{name}/{b}" if b.isdigit() else f"prompts:/{name}@{b}")
        changes = diff(name, a, b) if a != b else ""
        return render(
            "prompt.html",
            ctx=ctx,
            prompt=found,
            versions=sorted(versions(name), key=lambda v: v.version, reverse=True),
            a=a,
            b=b,
            lines=changes.splitlines(),
            shown=shown,
            history=list(reversed(label_history(name))),
            section="prompts",
        )

    return view


def flows(request: Request) -> View:
    """Every flow with its latest version."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.flows import list_flows

        return render("flows.html", ctx=ctx, flows=list_flows(), section="flows")

    return view


def flow(request: Request) -> View:
    """A flow: its versions (each one's spec) and its recent runs' traces."""
    name = request.path_params["name"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.flows import get_flow, versions
        from cauce.genai.flows.lines import trace_name
        from cauce.genai.tracing import list_traces

        return render(
            "flow.html",
            ctx=ctx,
            flow=get_flow(name),
            versions=sorted(versions(name), key=lambda v: v.version, reverse=True),
            traces=list_traces(name=trace_name(name), limit=20),
            section="flows",
        )

    return view


def indexes(request: Request) -> View:
    """Every RAG index with its current version."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.indexes.records import list_indexes

        return render("indexes.html", ctx=ctx, indexes=list_indexes(), section="flows")

    return view


def index(request: Request) -> View:
    """An index: its versions, the current one marked, the deployments that pin one, every
    move of the current version, and its spec."""
    name = request.path_params["name"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.genai.indexes.records import get_index, versions
        from cauce.genai.indexes.registry import current_history
        from cauce.serving.endpoints import list_endpoints

        found = get_index(name)
        pins = [
            (d, (d.spec.get("indexes") or {})[name])
            for e in list_endpoints()
            for d in e.deployments
            if name in (d.spec.get("indexes") or {})
        ]
        return render(
            "index.html",
            ctx=ctx,
            index=found,
            versions=sorted(versions(name), key=lambda v: v.version, reverse=True),
            pins=pins,
            history=list(reversed(current_history(name))),
            section="flows",
        )

    return view
