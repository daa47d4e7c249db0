"""Registry pages: models, a model's versions and aliases (moved here by an editor, with the
history of every move), and a version: its card, evaluations, gate checks and files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from cauce.errors import InvalidInput
from cauce.server.ui.pages import Context, View, form_fields, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request


def add_routes(app: FastAPI) -> None:
    """The registry pages."""
    app.add_api_route("/ui/models", page("viewer", models), include_in_schema=False)
    app.add_api_route("/ui/models/{name}", page("viewer", model_page), include_in_schema=False)
    app.add_api_route(
        "/ui/models/{name}/aliases",
        page("editor", move_alias, form=True),
        methods=["POST"],
        include_in_schema=False,
    )
    app.add_api_route(
        "/ui/models/{name}/versions/{version}",
        page("viewer", version_page),
        include_in_schema=False,
    )


def models(request: Request) -> View:
    """Every registered model with its latest version and aliases."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.registry.models import list_models

        return render("models.html", ctx=ctx, models=list_models(), section="models")

    return view


def model_page(request: Request) -> View:
    """A model's versions, its aliases and every move of them."""
    name = request.path_params["name"]

    def view(ws: Workspace, ctx: Context) -> Response:
        return render("model.html", **_model(ctx, name), section="models")

    return view


def move_alias(request: Request) -> View:
    """Point an alias at a version (an editor's form); answers the aliases part of the page."""
    name = request.path_params["name"]
    fields = form_fields(request)

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.registry.models import set_alias

        alias = fields.get("alias", "").strip()
        text = fields.get("version", "").strip()
        if not text.isdigit():
            raise InvalidInput(
                "choose the version the alias moves to", details={"field": "version"}
            )
        set_alias(name, alias, int(text), reason=fields.get("reason", "").strip() or None)
        # The aliases part, and out of band the versions' aliases and an emptied message slot.
        return render("model_aliases.html", **_model(ctx, name), oob=True)

    return view


def version_page(request: Request) -> View:
    """One version: what it is, its card, its evaluations, the gate checks it went through."""
    name = request.path_params["name"]
    number = request.path_params["version"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.lineage.audit import events
        from cauce.registry.card import version_card
        from cauce.registry.evaluations import evaluations
        from cauce.registry.models import get_version

        if not number.isdigit():
            raise InvalidInput(f"version {number!r} is not a number", details={"field": "version"})
        version = get_version(name, int(number))
        checks = events(ws, entity_kind="model_version", entity_id=version.id, action="gate.check")
        return render(
            "version.html",
            ctx=ctx,
            version=version,
            card=markdown(version_card(name, version.version)),
            evaluations=evaluations(version.uri),
            checks=checks,
            section="models",
        )

    return view


def _model(ctx: Context, name: str) -> dict[str, Any]:
    from cauce.registry.models import alias_history, get_model, versions

    return {
        "ctx": ctx,
        "model": get_model(name),
        "versions": sorted(versions(name), key=lambda v: v.version, reverse=True),
        "history": list(reversed(alias_history(name))),
    }


def markdown(text: str) -> str:
    """Markdown as HTML, raw HTML in it escaped (a card is written by whoever logs a model)."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))
