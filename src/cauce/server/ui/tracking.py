"""Tracking pages: experiments, the runs table, a run, runs compared, and metric series.

The runs table is ``search_runs`` itself: the search box takes its filter language, a column
header orders by that column (in the query, so over every run, not the page), and the columns
of params and metrics are chosen from those the shown runs logged. Charts read a metric's
series from ``/ui/series``, downsampled in the store (:mod:`cauce.tracking.series`); a zoomed
range is read again, exactly once it holds few enough steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from cauce.errors import InvalidInput, NotFound
from cauce.server.ui.pages import Context, View, number, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

    from cauce.tracking.artifacts import ArtifactEntry
    from cauce.tracking.entities import Run

PAGE_SIZE = 100
PREVIEW_BYTES = 256 * 1024  # of a text artifact, or of a CSV read for its first rows
PREVIEW_ROWS = 50
RASTER_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
TEXT_TYPES = {"application/json", "application/yaml", "application/x-yaml", "application/xml"}
DEFAULT_POINTS = 1000
DEFAULT_COLUMNS = 6  # metrics and params shown when none are chosen
MAX_COMPARED = 100
# A sweep's plot spreads its axes over about the width of a page, at least 130 px apart.
PARALLEL_MARGIN, PARALLEL_WIDTH, PARALLEL_HEIGHT = 60, 1100, 300
PARALLEL_GAP_MIN, PARALLEL_GAP_MAX = 130, 320


def add_routes(app: FastAPI) -> None:
    """The tracking pages."""
    app.add_api_route("/ui/experiments", page("viewer", experiments), include_in_schema=False)
    app.add_api_route("/ui/runs", page("viewer", runs_page), include_in_schema=False)
    app.add_api_route("/ui/runs/{run_id}", page("viewer", run_page), include_in_schema=False)
    app.add_api_route("/ui/compare", page("viewer", compare_page), include_in_schema=False)
    app.add_api_route("/ui/series", page("viewer", series), include_in_schema=False)
    app.add_api_route(
        "/ui/runs/{run_id}/artifacts/{path:path}",
        page("viewer", artifact_page),
        include_in_schema=False,
    )


def experiments(request: Request) -> View:
    """Every experiment, newest first, with how many runs it holds."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.tracking.experiments import list_experiments

        found = sorted(list_experiments(), key=lambda e: e.creation_time, reverse=True)
        return render("experiments.html", ctx=ctx, experiments=found, section="experiments")

    return view


def runs_page(request: Request) -> View:
    """The runs of an experiment (or all), filtered, ordered and paged; htmx asks for the
    table alone."""
    query = request.query_params
    experiment = query.get("experiment") or None
    filter_text = query.get("filter", "")
    order = query.get("order", "")
    columns = [c for c in query.getlist("col") if c.startswith(("metrics.", "params."))]
    start = _int(query.get("start", "0"), "start")
    # htmx asks for the table alone, except when it restores a page from its history.
    headers = request.headers
    partial = headers.get("hx-request") == "true" and not headers.get("hx-history-restore-request")

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.tracking.search import search_runs

        error = None
        try:
            found = search_runs(
                experiment,
                filter=filter_text or None,
                order_by=[order] if order else None,
                max_results=PAGE_SIZE + 1,
                offset=start,
            )
        except InvalidInput as exc:  # a filter being typed: say what is wrong, keep the page
            found, error = [], exc.message
        more = len(found) > PAGE_SIZE
        found = found[:PAGE_SIZE]
        metric_keys, param_keys = _keys(found)
        chosen = columns or _default_columns(metric_keys, param_keys)

        def link(**changes: Any) -> str:
            """This table's URL with ``changes`` (``order``, ``start``)."""
            values = {"experiment": experiment, "filter": filter_text, "order": order,
                      "col": chosen, "start": start, **changes}  # fmt: skip
            pairs = [
                (k, v)
                for k, given in values.items()
                for v in (given if isinstance(given, list) else [given])
                if v not in (None, "", 0)
            ]
            return f"{ctx.base}/ui/runs?{urlencode(pairs)}"

        def next_order(column: str) -> str:
            """The order a click on ``column``'s header asks for: the other direction when the
            table is ordered by it, else highest first for a metric, A to Z for the rest."""
            shown = _sorted_by(order, column)
            descending = shown == "asc" or (shown is None and column.startswith("metrics."))
            return f"{_order_field(column)} {'DESC' if descending else 'ASC'}"

        values: dict[str, Any] = {
            "ctx": ctx,
            "runs": found,
            "experiment": experiment,
            "filter": filter_text,
            "order": order,
            "columns": chosen,
            "metric_keys": metric_keys,
            "param_keys": param_keys,
            "start": start,
            "more": more,
            "page_size": PAGE_SIZE,
            "error": error,
            "cell": _cell,
            "sorted_by": lambda column: _sorted_by(order, column),
            "link": link,
            "next_order": next_order,
            "section": "runs",
        }
        return render("runs_table.html" if partial else "runs.html", **values)

    return view


def run_page(request: Request) -> View:
    """One run: what it is, its metrics (a chart each for those logged at several steps, a
    table of the others), params, tags, inputs, artifacts."""
    run_id = request.path_params["run_id"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.tracking.artifacts import list_artifacts
        from cauce.tracking.experiments import get_experiment
        from cauce.tracking.runs import get_run
        from cauce.tracking.search import search_runs
        from cauce.tracking.series import metric_steps

        run = get_run(run_id)
        steps = metric_steps(run_id)
        children = search_runs(
            filter=f"attributes.parent_run_id = '{run.info.run_id}'",
            order_by=["attributes.start_time"],
            max_results=MAX_COMPARED,
        )
        return render(
            "run.html",
            ctx=ctx,
            run=run,
            scores={k: v for k, v in run.data.metrics.items() if steps.get(k, 0) <= 1},
            histories={k: v for k, v in run.data.metrics.items() if steps.get(k, 0) > 1},
            children=children,
            experiment=get_experiment(run.info.experiment_id),
            artifacts=list_artifacts(run_id),
            section="runs",
        )

    return view


def artifact_page(request: Request) -> View:
    """An artifact of a run, previewed: text (its start), an image, or a table (CSV or Parquet:
    its first rows); anything else is offered as a download."""
    run_id = request.path_params["run_id"]
    path = request.path_params["path"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.tracking.artifacts import list_artifacts

        found = next((a for a in list_artifacts(run_id) if a.path == path), None)
        if found is None:
            raise NotFound(f"run {run_id} logged no artifact {path!r}")
        return render("artifact.html", ctx=ctx, run_id=run_id, artifact=found,
                      **preview(ws, found), section="runs")  # fmt: skip

    return view


def preview(ws: Workspace, artifact: ArtifactEntry) -> dict[str, Any]:
    """What the page shows of an artifact: ``kind`` (text, image, table or none) and its part."""
    kind = artifact.media_type
    tabular = kind in ("text/csv", "application/vnd.apache.parquet")
    if kind in RASTER_TYPES:  # served as bytes, a browser shows these; SVG it would not
        return {"kind": "image"}
    if not (tabular or kind.startswith("text/") or kind in TEXT_TYPES):
        return {"kind": "none"}
    if artifact.size > PREVIEW_BYTES and kind == "application/vnd.apache.parquet":
        return {"kind": "none"}
    data = ws.artifacts.read_bytes(artifact.sha256)
    if tabular:
        import io

        import pandas as pd

        reader = pd.read_parquet if kind.endswith("parquet") else pd.read_csv
        frame = reader(io.BytesIO(data if kind.endswith("parquet") else data[:PREVIEW_BYTES]))
        shown = frame.head(PREVIEW_ROWS)
        rows = [[_shown(v) for v in row] for row in shown.itertuples(index=False)]
        return {"kind": "table", "columns": [str(c) for c in frame.columns], "rows": rows,
                "total": len(frame)}  # fmt: skip
    text = data[:PREVIEW_BYTES].decode("utf-8", errors="replace")
    return {"kind": "text", "text": text, "cut": len(data) > PREVIEW_BYTES}


def _shown(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def compare_page(request: Request) -> View:
    """Runs side by side: params (those that differ first), latest metrics, and the series of
    each metric with a history overlaid."""
    ids = [i for i in request.query_params.getlist("run") if i][:MAX_COMPARED]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.tracking.runs import get_run
        from cauce.tracking.series import metric_steps

        if len(ids) < 2:
            raise InvalidInput("choose two runs or more to compare", details={"field": "run"})
        found = [get_run(i) for i in ids]
        params = sorted({k for r in found for k in r.data.params})
        differing = [k for k in params if len({r.data.params.get(k) for r in found}) > 1]
        same = [k for k in params if k not in differing]
        metrics = sorted({k for r in found for k in r.data.metrics})
        steps = [metric_steps(r.info.run_id) for r in found]
        charted = [k for k in metrics if any(c.get(k, 0) > 1 for c in steps)]
        return render(
            "compare.html",
            ctx=ctx,
            runs=found,
            differing=differing,
            same=same,
            metrics=metrics,
            charted=charted,
            parallel=parallel(found, differing, metrics),
            section="runs",
        )

    return view


def parallel(found: Sequence[Run], params: list[str], metrics: list[str]) -> dict[str, Any]:
    """A parallel-coordinates plot of a sweep: one vertical axis per param that differs and per
    metric, one line per run through its values (a number on a linear scale, any other value
    at its place among the axis's values in order); a run without a value breaks its line."""
    columns = [("params", k) for k in params] + [("metrics", k) for k in metrics]
    spread = (PARALLEL_WIDTH - 2 * PARALLEL_MARGIN) / max(1, len(columns) - 1)
    gap = round(min(PARALLEL_GAP_MAX, max(PARALLEL_GAP_MIN, spread)))
    axes: list[dict[str, Any]] = []
    for i, (kind, key) in enumerate(columns):
        values = [_cell(r, f"{kind}.{key}") for r in found]
        numbers = [_as_number(v) for v in values]
        if all(n is not None for n, v in zip(numbers, values, strict=True) if v is not None):
            shown = [n for n in numbers if n is not None]
            low, high = (min(shown), max(shown)) if shown else (0.0, 1.0)
            span = (high - low) or 1.0
            places = [None if n is None else (n - low) / span for n in numbers]
            ticks = (number(low), number(high))
        else:
            order = sorted({str(v) for v in values if v is not None})
            step = 1 / max(1, len(order) - 1)
            places = [None if v is None else order.index(str(v)) * step for v in values]
            ticks = (order[0], order[-1]) if order else ("", "")
        x = PARALLEL_MARGIN + i * gap
        axes.append({"x": x, "label": key, "kind": kind, "low": ticks[0], "high": ticks[1],
                     "places": places})  # fmt: skip
    lines: list[dict[str, Any]] = []
    top, height = 24, PARALLEL_HEIGHT - 48
    colour_by = next((a for a in reversed(axes) if a["kind"] == "metrics"), None)
    for r, run in enumerate(found):
        points: list[str] = []
        segments: list[list[str]] = []
        for axis in axes:
            place = axis["places"][r]
            if place is None:
                if len(points) > 1:
                    segments.append(points)
                points = []
                continue
            points.append(f"{axis['x']},{top + height - place * height:.1f}")
        if len(points) > 1:
            segments.append(points)
        shade = colour_by["places"][r] if colour_by is not None else None
        # Blue (low) through violet to red (high): never the green of a run in the charts below.
        hue = 220 if shade is None else round(220 + 160 * shade) % 360
        lines.append({"run": run, "paths": [" ".join(p) for p in segments], "hue": hue})
    width = PARALLEL_MARGIN * 2 + max(0, len(axes) - 1) * gap
    return {"axes": axes, "lines": lines, "width": width, "height": PARALLEL_HEIGHT,
            "top": top, "bottom": top + height}  # fmt: skip


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        found = float(value)
    except (TypeError, ValueError):
        return None
    return found if math.isfinite(found) else None


def series(request: Request) -> View:
    """A metric's series of one run, downsampled to ``points`` in the store (within
    ``from``..``to`` steps when given), as JSON: ``{"steps", "values", "exact", "total"}``."""
    query = request.query_params
    run_id = query.get("run", "")
    key = query.get("key", "")
    points = _int(query.get("points", str(DEFAULT_POINTS)), "points")
    low = _number(query.get("from"), "from")
    high = _number(query.get("to"), "to")

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.tracking.series import metric_series

        found = metric_series(
            run_id,
            key,
            points,
            None if low is None else math.ceil(low),
            None if high is None else math.floor(high),
        )
        return JSONResponse(asdict(found))

    return view


# -- helpers ------------------------------------------------------------------------------------


def _keys(found: Sequence[Run]) -> tuple[list[str], list[str]]:
    metrics = sorted({k for r in found for k in r.data.metrics})
    params = sorted({k for r in found for k in r.data.params})
    return metrics, params


def _default_columns(metric_keys: list[str], param_keys: list[str]) -> list[str]:
    shown = [f"metrics.{k}" for k in metric_keys[: DEFAULT_COLUMNS // 2]]
    shown += [f"params.{k}" for k in param_keys[: DEFAULT_COLUMNS - len(shown)]]
    return shown


def _cell(run: Run, column: str) -> Any:
    kind, _, key = column.partition(".")
    if kind == "metrics":
        return run.data.metrics.get(key)
    return run.data.params.get(key)


def _sorted_by(order: str, column: str) -> str | None:
    """``asc`` or ``desc`` when the table is ordered by ``column``, else None."""
    field, _, direction = order.strip().partition(" ")
    if field != _order_field(column):
        return None
    return "desc" if direction.strip().upper() == "DESC" else "asc"


def _order_field(column: str) -> str:
    """A column as ``search_runs`` orders by it: a key with odd characters in backquotes."""
    kind, _, key = column.partition(".")
    plain = key.replace("_", "").replace(".", "").isalnum()
    return column if plain else f"{kind}.`{key}`"


def _int(text: str, field: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput(
            f"{field} must be a whole number, not {text!r}", details={"field": field}
        ) from None
    if value < 0:
        raise InvalidInput(f"{field} must be 0 or more", details={"field": field})
    return value


def _number(text: str | None, field: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(
            f"{field} must be a number, not {text!r}", details={"field": field}
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{field} must be finite", details={"field": field})
    return value
