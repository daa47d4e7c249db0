"""Monitoring pages: monitors, a monitor's values over time against their thresholds (a chart
for each signal, feature and metric), its runs and alerts, and an alert with its breaches and
every attempt at its actions."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from cauce.server.ui.pages import Context, View, page, render
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

HISTORY_LIMIT = 5000  # values read for the charts, newest kept


def add_routes(app: FastAPI) -> None:
    """The monitoring pages."""
    app.add_api_route("/ui/monitors", page("viewer", monitors), include_in_schema=False)
    app.add_api_route("/ui/monitors/{name}", page("viewer", monitor), include_in_schema=False)
    app.add_api_route("/ui/alerts/{alert_id}", page("viewer", alert), include_in_schema=False)


def monitors(request: Request) -> View:
    """Every monitor with its last run and its open alerts."""

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.monitoring.alerts import list_alerts
        from cauce.monitoring.monitors import list_monitors

        open_alerts: dict[str, int] = defaultdict(int)
        for found in list_alerts(state="open", limit=1000):
            open_alerts[found.monitor] += 1
        return render(
            "monitors.html",
            ctx=ctx,
            monitors=list_monitors(),
            open_alerts=open_alerts,
            section="monitors",
        )

    return view


def monitor(request: Request) -> View:
    """A monitor: a chart of each value over time with its threshold, runs, alerts."""
    name = request.path_params["name"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.monitoring.alerts import list_alerts
        from cauce.monitoring.monitors import get_monitor, history, runs

        found = get_monitor(name)
        return render(
            "monitor.html",
            ctx=ctx,
            monitor=found,
            charts=series(history(name, limit=HISTORY_LIMIT)),
            runs=runs(name, limit=20),
            alerts=list_alerts(monitor=name, limit=20),
            section="monitors",
        )

    return view


def alert(request: Request) -> View:
    """An alert: why, its breaches, and each action with every attempt at it."""
    alert_id = request.path_params["alert_id"]

    def view(ws: Workspace, ctx: Context) -> Response:
        from cauce.monitoring.alerts import get_alert

        return render("alert.html", ctx=ctx, alert=get_alert(alert_id), section="monitors")

    return view


def series(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The values grouped into one chart per (signal, feature, metric), breached ones first:
    times (s), values, thresholds, and the JSON a chart reads. A series that never held a
    value (a window without data, where every signal is not computed) has no chart."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for value in values:
        grouped[(value["signal"], value["feature"] or "", value["metric"])].append(value)
    charts = []
    for (signal, feature, metric), rows in grouped.items():
        if all(r["value"] is None for r in rows):
            continue
        data = {
            "x": [r["at"] / 1000 for r in rows],
            "series": [
                {"label": metric, "values": [_finite(r["value"]) for r in rows]},
                {"label": "threshold", "values": [_finite(r["threshold"]) for r in rows],
                 "dash": True},
            ],
        }  # fmt: skip
        charts.append(
            {
                "signal": signal,
                "feature": feature,
                "metric": metric,
                "latest": rows[-1],
                "breached": rows[-1]["outcome"] == "breached",
                "data": json.dumps(data),
            }
        )
    return sorted(charts, key=lambda c: (not c["breached"], c["signal"], c["feature"], c["metric"]))


def _finite(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None
