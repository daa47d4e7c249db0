"""Data pages: datasets, and a dataset's versions with the chosen version's profile (a
histogram or the top values of each column) and the validations stored for it, each failing
check with a sample of the rows that failed it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from cauce.errors import InvalidInput, NotFound
from cauce.server.ui.pages import Context, View, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

BAR_WIDTH = 6  # px of one histogram bar
BAR_HEIGHT = 48  # px of the tallest


def add_routes(app: FastAPI) -> None:
    """The data pages."""
    app.add_api_route("/ui/datasets", page("viewer", datasets), include_in_schema=False)
    app.add_api_route("/ui/datasets/{name}", page("viewer", dataset), include_in_schema=False)


def datasets(request: Request) -> View:
    """Every dataset with its newest version."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.data.assets import list_datasets

        found = sorted(list_datasets(), key=lambda v: v.name)
        return render("datasets.html", ctx=ctx, datasets=found, section="datasets")

    return view


def dataset(request: Request) -> View:
    """A dataset's versions, newest first, and one of them (``?version=N``, else the newest):
    its schema, profile and validations."""
    name = request.path_params["name"]
    asked = request.query_params.get("version")

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.data.assets import stored_profile, versions
        from cauce.data.checks import list_validations

        found = sorted(versions(name), key=lambda v: v.version, reverse=True)
        if not found:
            raise NotFound(f"dataset {name!r} has no versions")
        if asked is not None and not asked.isdigit():
            raise InvalidInput(f"version {asked!r} is not a number", details={"field": "version"})
        shown = next((v for v in found if asked is None or v.version == int(asked)), None)
        if shown is None:
            raise NotFound(f"dataset {name!r} has no version {asked}")
        profile = stored_profile(shown.ref) or {"columns": {}}
        return render(
            "dataset.html",
            ctx=ctx,
            versions=found,
            shown=shown,
            columns=[(column, _shape(stats)) for column, stats in profile["columns"].items()],
            validations=list_validations(shown.ref),
            section="datasets",
        )

    return view


def _shape(stats: dict[str, Any]) -> dict[str, Any]:
    """A column's profile, with its histogram as bars to draw (x, height, from, to, count)."""
    histogram = stats.get("histogram") or {}
    counts = histogram.get("counts") or []
    edges = histogram.get("edges") or []
    tallest = max(counts, default=0) or 1
    bars = [
        {
            "x": i * BAR_WIDTH,
            "height": max(1, round(BAR_HEIGHT * count / tallest)) if count else 0,
            "low": edges[i] if i < len(edges) else None,
            "high": edges[i + 1] if i + 1 < len(edges) else None,
            "count": count,
        }
        for i, count in enumerate(counts)
    ]
    top = stats.get("top_k") or []
    most = max((t["count"] for t in top), default=0) or 1
    return {
        **stats,
        "bars": bars,
        "bars_width": len(bars) * BAR_WIDTH,
        "bar_height": BAR_HEIGHT,
        "top": [{**t, "share": t["count"] / most} for t in top[:8]],
    }
