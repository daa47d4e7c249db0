"""Pipeline pages: recent pipeline runs, and a run as its DAG of steps (each with its status,
whether the cache answered it, and how long it took) beside the steps' table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from cauce.server.ui.graphs import drawn
from cauce.server.ui.pages import Context, View, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

    from cauce.pipelines.runs import PipelineRun


def add_routes(app: FastAPI) -> None:
    """The pipeline pages."""
    app.add_api_route("/ui/pipelines", page("viewer", pipeline_runs), include_in_schema=False)
    app.add_api_route(
        "/ui/pipelines/{run_id}", page("viewer", pipeline_run), include_in_schema=False
    )


def pipeline_runs(request: Request) -> View:
    """Recent pipeline runs, newest first (of one pipeline when ``pipeline`` is given)."""
    name = request.query_params.get("pipeline") or None

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.pipelines.runs import read_pipeline_runs

        found = read_pipeline_runs(name, max_results=100)
        return render("pipelines.html", ctx=ctx, runs=found, name=name, section="pipelines")

    return view


def pipeline_run(request: Request) -> View:
    """A pipeline run: its DAG, then each step's attempts, inputs and error."""
    run_id = request.path_params["run_id"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.pipelines.runs import read_pipeline_run

        found = read_pipeline_run(run_id)
        return render("pipeline.html", ctx=ctx, run=found, **dag(found), section="pipelines")

    return view


def dag(run: PipelineRun) -> dict[str, Any]:
    """The run's steps drawn in columns: a step one column right of the furthest step it takes
    an output from."""
    upstream = {
        name: sorted(
            {i["step"] for i in step.inputs.values() if isinstance(i, dict) and "step" in i}
        )
        for name, step in run.steps.items()
    }
    depth: dict[str, int] = {}

    def column(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in depth:
            parents = [p for p in upstream.get(name, []) if p in run.steps and p not in seen]
            depth[name] = 1 + max((column(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    for name in run.steps:
        column(name)
    edges = [(parent, name, "input") for name, parents in upstream.items() for parent in parents]
    found = drawn(depth, edges, lambda name: name)
    for placed in found["nodes"]:
        placed["step"] = run.steps[placed["key"]]
    return found
