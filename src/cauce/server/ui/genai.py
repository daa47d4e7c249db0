"""GenAI pages: prompts, and a prompt's versions with their labels, what changed between two
of them (a unified diff, lines coloured), the messages of one, and every label move."""

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
