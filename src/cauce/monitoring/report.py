"""Monitor reports: one self-contained HTML page per monitor run.

The page shows the run (target, reference, window, status), a summary of each signal, a card
per drifting feature with the reference and current distributions and the metric's history
against its threshold, tables of data quality and model performance values with their history,
and the monitor's alerts with the actions they started. A GenAI monitor's page has a table per
operational signal (tokens, cost, latency, errors, refusals, safety) and for evaluator scores,
each value with its history, and for query drift a card per principal component and the
queries the domain classifier found least like the reference. Every text from the records
(queries, error codes, filter names) is escaped. Charts are inline SVG and the styles
one ``<style>`` tag: the page loads nothing from anywhere and renders offline.

Example::

    cauce monitors report churn-drift --html churn-drift.html
"""

from __future__ import annotations

import datetime as dt
import html
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.errors import NotFound
from cauce.monitoring.drift import BREACHED, MEASURED, NOT_COMPUTED, P_VALUE_METRICS, PASSED
from cauce.monitoring.specs import GENAI_SIGNALS
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.monitoring.alerts import Alert
    from cauce.monitoring.monitors import MonitorRun

HISTORY_RUNS = 50  # points in each history chart, newest last
REFERENCE, CURRENT = "#4c78a8", "#f58518"
COLOURS = {PASSED: "#2e7d32", BREACHED: "#c62828", NOT_COMPUTED: "#8d8d8d"}
KIND = {PASSED: "good", "ok": "good", "resolved": "good", "succeeded": "good"}
KIND |= {BREACHED: "bad", "alert": "bad", "failed": "bad", "open": "bad"}
SIGNAL_TITLES = {
    "data_drift": "Data drift",
    "prediction_drift": "Prediction drift",
    "data_quality": "Data quality",
    "model_performance": "Model performance",
    "genai_tokens": "Tokens",
    "genai_cost": "Cost",
    "genai_latency": "Latency and time to first token",
    "genai_errors": "Errors",
    "genai_refusals": "Refusals",
    "genai_safety": "Safety filters",
    "genai_quality": "Quality: evaluator scores on a sample",
    "query_drift": "Query drift",
}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
margin:0;background:#f4f5f7}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}
h3{font-size:15px;margin:0;word-break:break-all}
.muted{color:#666}.small{font-size:12px}
.meta{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:6px 18px;
background:#fff;border:1px solid #ddd;border-radius:8px;padding:14px 16px;margin-top:12px}
.meta label{display:block;color:#666;font-size:12px}
.box{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px}
.warn{border-left:4px solid #c62828}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #ddd}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eee;vertical-align:middle}
th{background:#fafafa;font-size:12px;color:#555;font-weight:600}
td{font-variant-numeric:tabular-nums}.num{white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;
white-space:nowrap;background:#e8e8e8;color:#444}
.badge.good{background:#e3f1e4;color:#1b5e20}.badge.bad{background:#fbe3e3;color:#b71c1c}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px}
.card.breached{border-top:4px solid #c62828}.card.passed{border-top:4px solid #2e7d32}
.card.not_computed{border-top:4px solid #8d8d8d}
.head{display:flex;justify-content:space-between;gap:10px;align-items:baseline}
.value{margin:6px 0 8px}.value b{font-size:18px}
.reason{background:#f6f6f6;border-radius:6px;padding:8px 10px;margin:8px 0;color:#444}
svg{max-width:100%;height:auto;display:block}svg text{font:11px system-ui,sans-serif;fill:#555}
.caption{font-size:12px;color:#666;margin:8px 0 2px}
"""


def write_report(
    name: str,
    path: str | Path,
    *,
    run_id: str | None = None,
    workspace: Workspace | None = None,
) -> Path:
    """Write the HTML report of a monitor's run (default: its latest) to ``path``; return it.

    Example:
        write_report("churn-drift", "churn-drift.html")
    """
    from cauce.monitoring.alerts import list_alerts
    from cauce.monitoring.monitors import get_monitor, get_run, history, run_values, runs

    ws = workspace or current()
    monitor = get_monitor(name, workspace=ws)
    recent = runs(name, limit=HISTORY_RUNS, workspace=ws)
    if not recent:
        raise NotFound(f"monitor {name!r} has no runs yet", hint=f"cauce monitors run {name}")
    run = recent[0] if run_id is None else get_run(name, run_id, workspace=ws)
    values = run_values(run.id, workspace=ws)
    series = history(name, limit=HISTORY_RUNS * max(len(values), 1) * 2, workspace=ws)
    page = render_report(
        monitor.spec,
        run,
        values,
        series,
        list_alerts(monitor=name, limit=50, workspace=ws),
        runs=[r for r in recent if r.started_at <= run.started_at],
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def render_report(
    spec: dict[str, Any],
    run: MonitorRun,
    values: list[dict[str, Any]],
    series: list[dict[str, Any]],
    alerts: Sequence[Alert] = (),
    *,
    runs: Sequence[MonitorRun] = (),
    generated_at: int | None = None,
) -> str:
    """The report page: ``values`` of ``run``, ``series`` (history, oldest first), alerts, runs."""
    past: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for point in series:
        if point["at"] <= run.started_at:
            past.setdefault((point["signal"], point["feature"], point["metric"]), []).append(point)
    charts = {key: points[-HISTORY_RUNS:] for key, points in past.items()}
    name = str(spec.get("name", run.monitor))
    generated = (
        generated_at if generated_at is not None else int(dt.datetime.now().timestamp() * 1e3)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Monitor {_e(name)}: {_e(_label(run.status))}</title>",
        f"<style>{CSS}</style></head><body><main>",
        _header(spec, run, generated),
        _summary(spec, values),
    ]
    for signal in ("data_drift", "prediction_drift"):
        found = [v for v in values if v["signal"] == signal and v["feature"] != "*"]
        if found:
            parts.append(f"<h2>{SIGNAL_TITLES[signal]}: per feature</h2>")
            parts.append('<div class="cards">')
            parts += [
                _card(v, charts.get((signal, v["feature"], v["metric"]), []), _rule(v, spec))
                for v in found
            ]
            parts.append("</div>")
    for signal in ("data_quality", "model_performance"):
        found = [v for v in values if v["signal"] == signal]
        if found:
            parts.append(f"<h2>{SIGNAL_TITLES[signal]}</h2>")
            parts.append(_values_table(found, charts, spec))
    for signal in GENAI_SIGNALS:
        found = [v for v in values if v["signal"] == signal]
        if found:
            parts.append(f"<h2>{_e(SIGNAL_TITLES[signal])}</h2>")
            parts.append(_genai_section(signal, found, charts, spec))
    parts.append(_runs_table(runs, run.id))
    parts.append(_alerts_table(alerts, run.id))
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


# -- sections ---------------------------------------------------------------------------------


def _header(spec: dict[str, Any], run: MonitorRun, generated: int) -> str:
    target = spec.get("target") or {}
    reference = spec.get("reference") or {}
    if target.get("dataset"):
        aimed = f"dataset {target['dataset']}"
        window = (
            f"{_when(run.window_start)} → {_when(run.window_end)}"
            if run.window_start is not None
            else "the dataset's newest version"
        )
    else:
        aimed = f"endpoint {target.get('endpoint')}"
        deployments = target.get("deployments")
        aimed += f" ({', '.join(deployments)})" if deployments else ""
        window = f"{_when(run.window_start)} → {_when(run.window_end)}"
    ref = str(run.summary.get("reference") or reference.get("dataset") or "—")
    if reference.get("model"):
        ref += f" (training data of {reference['model']})"
    if run.summary.get("reference_rows") is not None:
        ref += f", {run.summary['reference_rows']:,} rows"
    items = [
        ("Status", _badge(run.status)),
        ("Target", _e(aimed)),
        ("Reference", _e(ref)),
        ("Window", _e(window)),
        ("Rows", f"{run.rows:,}"),
        ("Run at", _e(_when(run.started_at))),
        ("Breaches", str(run.summary.get("breaches", 0))),
        ("Run", f'<span class="small">{_e(run.id)}</span>'),
    ]
    cells = "".join(f"<div><label>{label}</label>{body}</div>" for label, body in items)
    out = [
        f"<h1>Monitor {_e(str(spec.get('name', run.monitor)))}</h1>",
        f'<div class="muted small">Report generated {_e(_when(generated))}; '
        f"{run.duration_ms} ms run.</div>",
        f'<div class="meta">{cells}</div>',
    ]
    problem = run.error or (run.summary.get("reason") if run.status != "ok" else None)
    if problem:
        label = "The run failed" if run.status == "failed" else "Nothing was judged"
        out.append(f'<p class="box warn"><b>{label}:</b> {_e(str(problem))}</p>')
    return "\n".join(out)


def _summary(spec: dict[str, Any], values: list[dict[str, Any]]) -> str:
    rows = []
    for entry in spec.get("signals") or []:
        signal = next((k for k, v in entry.items() if v is not None), "")
        found = [v for v in values if v["signal"] == signal]
        # Dataset-level signals (model performance) have one value, counted as their feature.
        per_feature = [v for v in found if v["feature"] != "*"] or found
        counts = {o: sum(v["outcome"] == o for v in per_feature) for o in COLOURS}
        totals = [v for v in found if v["feature"] == "*"]
        total = totals[0] if len(totals) == 1 else None
        if len(totals) > 1:  # GenAI signals: several dataset-level metrics, the worst decides
            outcomes = {v["outcome"] for v in totals}
            worst = next((o for o in (BREACHED, PASSED, MEASURED) if o in outcomes), NOT_COMPUTED)
            verdict, value, limit = _badge(worst), "", ""
            metric = ", ".join(dict.fromkeys(v["metric"] for v in totals))
        elif total is not None:
            verdict = _badge(total["outcome"])
            value = _value_text(total)
            limit = _limit_text(total, _rule(total, spec))
            metric = total["metric"]
        else:
            worst = BREACHED if counts[BREACHED] else (PASSED if counts[PASSED] else NOT_COMPUTED)
            verdict, value, limit = _badge(worst), "", ""
            metric = ", ".join(dict.fromkeys(v["metric"] for v in found))
        title = SIGNAL_TITLES.get(signal, signal)
        rows.append([_e(title), _e(metric), value, limit, verdict, *map(str, counts.values())])
    columns = "Signal Metric Value Threshold Outcome Passed Breached Not computed"
    return "<h2>Summary</h2>" + _table(columns.split(" ", 7), rows)


def _card(value: dict[str, Any], points: list[dict[str, Any]], rule: str) -> str:
    details = value.get("details") or {}
    distribution = details.get("distribution")
    kind = "categorical" if distribution and "categories" in distribution else "numerical"
    kind = kind if distribution else ""
    body = [
        f'<div class="card {_e(value["outcome"])}"><div class="head">'
        f"<h3>{_e(value['feature'])}</h3>{_badge(value['outcome'])}</div>",
        f'<div class="value muted">{_e(value["metric"])} ' + (f"· {kind} " if kind else ""),
        f"<b>{_value_text(value)}</b> · threshold {_limit_text(value, rule)}</div>",
    ]
    if value["outcome"] == NOT_COMPUTED:
        reason = details.get("reason") or "no reason was recorded"
        body.append(f'<div class="reason"><b>Not computed:</b> {_e(str(reason))}</div>')
    if distribution:
        body.append('<div class="caption">Reference vs current, share of rows per bin</div>')
        body.append(_distribution_svg(distribution, details))
    unseen = details.get("unseen_categories")
    if unseen:
        body.append(
            '<div class="caption">Categories the reference never had: '
            + _e(", ".join(map(str, unseen)))
            + "</div>"
        )
    body.append('<div class="caption">History over runs</div>')
    body.append(_history_svg(points, value["metric"]))
    body.append("</div>")
    return "\n".join(body)


def _values_table(
    values: list[dict[str, Any]],
    charts: dict[tuple[str, str, str], list[dict[str, Any]]],
    spec: dict[str, Any],
) -> str:
    rows = []
    for v in values:
        details = v.get("details") or {}
        note = details.get("reason") or ", ".join(
            f"{k}: {_short(x)}" for k, x in details.items() if k != "reason" and x not in ([], {})
        )
        points = charts.get((v["signal"], v["feature"], v["metric"]), [])
        chart = _history_svg(points, v["metric"], width=220, height=56, axes=False)
        rows.append(
            [
                _e(v["feature"]),
                _e(v["metric"]),
                _value_text(v),
                _limit_text(v, _rule(v, spec)),
                _badge(v["outcome"]),
                f'<span class="small muted">{_e(note)}</span>',
                chart,
            ]
        )
    return _table(
        ["Feature", "Metric", "Value", "Threshold", "Outcome", "Details", "History"], rows
    )


def _runs_table(runs: Sequence[MonitorRun], reported: str) -> str:
    if not runs:
        return ""
    rows = [
        [
            _e(_when(r.started_at)) + (" (this report)" if r.id == reported else ""),
            _badge(r.status),
            f"{r.rows:,}",
            str(r.summary.get("breaches", 0)),
            f'<span class="small muted">{_e(r.id)}</span>',
        ]
        for r in runs
    ]
    return "<h2>Recent runs</h2>" + _table(["Run at", "Status", "Rows", "Breaches", "Run"], rows)


def _alerts_table(alerts: Sequence[Alert], reported: str) -> str:
    if not alerts:
        return '<h2>Alerts</h2><p class="box muted">This monitor has raised no alert.</p>'
    rows = []
    for a in alerts:
        actions = (
            "<br>".join(
                f"{_e(x.action)}{'' if x.target == x.action else ' ' + _e(x.target)}: "
                f"{_badge(x.status)}"
                + (f" after {x.attempts} attempts" if x.attempts > 1 else "")
                + (f" <span class='muted'>({_e(x.error)})</span>" if x.error else "")
                for x in a.actions
            )
            or '<span class="muted">none</span>'
        )
        state = _badge(a.state) + (
            f"<div class='small muted'>resolved {_e(_when(a.resolved_at))}</div>"
            if a.resolved_at
            else ""
        )
        this = " (this run)" if a.monitor_run_id == reported else ""
        reason = f'<span class="small">{_e(a.reason)}</span>'
        rows.append(
            [_e(_when(a.at)) + this, state, reason, f'<span class="small">{actions}</span>']
        )
    return "<h2>Alerts</h2>" + _table(["Raised", "State", "Reason", "Actions"], rows)


def _genai_section(
    signal: str,
    values: list[dict[str, Any]],
    charts: dict[tuple[str, str, str], list[dict[str, Any]]],
    spec: dict[str, Any],
) -> str:
    """A GenAI signal: its values with their history; query drift's components as cards."""
    out = []
    if signal == "query_drift":
        components = [v for v in values if v["feature"] != "*"]
        if components:
            out.append('<div class="cards">')
            out += [
                _card(v, charts.get((signal, v["feature"], v["metric"]), []), _rule(v, spec))
                for v in components
            ]
            out.append("</div>")
        values = [v for v in values if v["feature"] == "*"]
    rows = []
    for v in values:
        points = charts.get((v["signal"], v["feature"], v["metric"]), [])
        rows.append(
            [
                _e(v["metric"]),
                _value_text(v),
                _limit_text(v, _rule(v, spec)),
                _badge(v["outcome"]),
                f'<span class="small muted">{_e(_note(v.get("details") or {}))}</span>',
                _history_svg(points, v["metric"], width=220, height=56, axes=False),
            ]
        )
    out.append(_table(["Metric", "Value", "Threshold", "Outcome", "Details", "History"], rows))
    for v in values:
        unlike = (v.get("details") or {}).get("most_unlike_reference")
        if unlike:
            items = "".join(
                f"<li>{_e(u.get('query', ''))} "
                f'<span class="muted small">({_e(_short(float(u.get("score", 0))))})</span></li>'
                for u in unlike
            )
            out.append(
                '<div class="caption">The window\'s queries the classifier found least like '
                f'the reference</div><ul class="box">{items}</ul>'
            )
    return "\n".join(out)


def _note(details: dict[str, Any]) -> str:
    """A value's details in one line of text: the reason, else each detail, with lists of
    requests as their ids (scores in brackets)."""
    if details.get("reason"):
        return str(details["reason"])
    parts = []
    for key, item in details.items():
        if key in ("distribution", "most_unlike_reference") or item in ([], {}, None):
            continue
        if isinstance(item, dict):
            text = ", ".join(f"{k} {_short(x)}" for k, x in item.items())
        elif isinstance(item, list) and all(isinstance(x, dict) for x in item):
            text = ", ".join(
                f"{x.get('correlation_id', '?')} ({_short(x.get('score'))})" for x in item
            )
        else:
            text = _short(item)
        parts.append(f"{key.replace('_', ' ')}: {text}")
    return "; ".join(parts)


# -- charts -----------------------------------------------------------------------------------


def _distribution_svg(distribution: dict[str, Any], details: dict[str, Any]) -> str:
    """Grouped bars of both sides' shares per bin or category, with a legend and axis labels."""
    reference = [float(x) for x in distribution.get("reference", [])]
    current = [float(x) for x in distribution.get("current", [])]
    if not reference or len(reference) != len(current):
        return '<div class="reason">No distribution was recorded.</div>'
    categories = distribution.get("categories")
    edges = distribution.get("edges") or []
    counts = (details.get("reference_count"), details.get("current_count"))
    # Shares of all values: categories beyond those shown count in the totals.
    p = [x / float(counts[0] or sum(reference) or 1) for x in reference]
    q = [x / float(counts[1] or sum(current) or 1) for x in current]
    n, top = len(p), max(*p, *q) or 1.0
    rotate = categories is not None and (n > 6 or max(len(str(c)) for c in categories) > 10)
    width, left, right, head, plot_h = 540, 44, 10, 26, 130
    height, y0 = head + plot_h + (70 if rotate else 34), head + plot_h
    step = (width - left - right) / n
    bar = max(step * 0.4, 1.0)
    out = [_svg_open(width, height, "reference and current distributions")]
    for frac in (0.0, 0.5, 1.0):
        y = y0 - frac * plot_h
        out.append(_line(left, y, width - right, y, "#999" if frac == 0 else "#e5e5e5"))
        out.append(_text(left - 4, y + 4, f"{top * frac:.0%}", "end"))
    for i in range(n):
        if categories is not None:
            label = str(categories[i])
        elif len(edges) == n + 1:
            low = "\u2212∞" if i == 0 else _short(edges[i])
            label = f"[{low}, {'+∞' if i == n - 1 else _short(edges[i + 1])})"
        else:
            label = f"bin {i + 1}"
        x = left + i * step + step * 0.1
        for offset, share, colour, side in (
            (0, p[i], REFERENCE, "reference"),
            (bar, q[i], CURRENT, "current"),
        ):
            h = share / top * plot_h
            out.append(
                f'<rect x="{x + offset:.1f}" y="{y0 - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{_e(label)}: {side} {share:.1%}</title></rect>'
            )
    if categories is not None:
        for i, category in enumerate(map(str, categories)):
            x, shown = (
                left + (i + 0.5) * step,
                category if len(category) <= 14 else category[:13] + "…",
            )
            turn = f'transform="rotate(-40 {x:.1f} {y0 + 12})"' if rotate else ""
            out.append(
                _text(x, y0 + (12 if rotate else 14), shown, "end" if rotate else "middle", turn)
            )
    elif len(edges) == n + 1:
        for i in range(1, n, max(1, -(-n // 6))):
            out.append(_line(left + i * step, y0, left + i * step, y0 + 4, "#999"))
            out.append(_text(left + i * step, y0 + 15, _short(edges[i]), "middle"))
        out.append(_text(left, y0 + 28, "first and last bins run to \u2212∞ and +∞"))
    others = int(distribution.get("others") or 0)
    if others:
        out.append(
            _text(width - right, height - 4, f"and {others} other categories not shown", "end")
        )
    for j, (side, colour) in enumerate((("reference", REFERENCE), ("current", CURRENT))):
        label = side + (f" (n={counts[j]:,})" if isinstance(counts[j], int) else "")
        out.append(f'<rect x="{left + j * 170}" y="6" width="12" height="12" fill="{colour}"/>')
        out.append(_text(left + j * 170 + 17, 16, label))
    return "".join(out) + "</svg>"


def _history_svg(
    points: list[dict[str, Any]],
    metric: str,
    *,
    width: int = 540,
    height: int = 130,
    axes: bool = True,
) -> str:
    """A line of the metric over runs, a dot per run coloured by outcome, the threshold dashed."""
    if not points:
        return '<span class="muted small">no history</span>'
    left, right, head, bottom = (44, 12, 8, 22) if axes else (4, 4, 4, 4)
    values = [float(p["value"]) for p in points if p["value"] is not None]
    limits = [float(p["threshold"]) for p in points if p["threshold"] is not None]
    every = values + limits or [0.0]
    lo, hi = min(0.0, *every), max(every)
    hi = hi + (hi - lo) * 0.1 if hi > lo else lo + 1.0
    plot_w, plot_h, n = width - left - right, height - head - bottom, len(points)
    base = head + plot_h

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return head + plot_h * (1 - (v - lo) / (hi - lo))

    out = [
        _svg_open(width, height, f"history of {metric}"),
        _line(left, base, width - right, base, "#bbb"),
    ]
    if limits:
        steps = [
            (x(i), y(p["threshold"])) for i, p in enumerate(points) if p["threshold"] is not None
        ]
        if len(steps) == 1:
            steps = [(left, steps[0][1]), (width - right, steps[0][1])]
        path = " ".join(f"{'L' if k else 'M'}{a:.1f},{b:.1f}" for k, (a, b) in enumerate(steps))
        out.append(
            f'<path d="{path}" fill="none" stroke="{COLOURS[BREACHED]}" stroke-dasharray="5 4"/>'
        )
        if axes:
            rule = "below" if metric in P_VALUE_METRICS else "above"
            label = f"threshold {_short(limits[-1])} (breaches {rule})"
            out.append(
                _text(width - right, y(limits[-1]) - 4, label, "end", f'fill="{COLOURS[BREACHED]}"')
            )
    segments: list[list[str]] = [[]]
    for i, p in enumerate(points):
        if p["value"] is None:
            segments.append([])
        else:
            segments[-1].append(f"{x(i):.1f},{y(p['value']):.1f}")
    for segment in (s for s in segments if len(s) > 1):
        out.append(
            f'<polyline points="{" ".join(segment)}" fill="none" stroke="#555" stroke-width="1.5"/>'
        )
    for i, p in enumerate(points):
        tip = f"<title>{_e(_when(p['at']))}: {_e(_point_text(p))}</title>"
        r = 4 if i == n - 1 else 3
        if p["value"] is None:
            look, cy = f'fill="#fff" stroke="{COLOURS[NOT_COMPUTED]}"', base - 3.0
        else:
            look, cy = f'fill="{COLOURS.get(p["outcome"], "#555")}"', y(p["value"])
        out.append(f'<circle cx="{x(i):.1f}" cy="{cy:.1f}" r="{r}" {look}>{tip}</circle>')
    if axes:
        out += [
            _text(left - 4, head + 8, _short(hi), "end"),
            _text(left - 4, base + 4, _short(lo), "end"),
        ]
        out.append(_text(left, height - 6, _when(points[0]["at"])))
        if n > 1:
            out.append(_text(width - right, height - 6, _when(points[-1]["at"]), "end"))
    return "".join(out) + "</svg>"


def _text(x: float, y: float, body: str, anchor: str = "start", attrs: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {attrs}>{_e(body)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'


# -- helpers ----------------------------------------------------------------------------------


def _table(columns: list[str], rows: list[list[str]]) -> str:
    """A table of cells that are HTML already."""
    head = "".join(f"<th>{c}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_e(label)}">'
    )


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _badge(outcome: str) -> str:
    kind = f"badge {KIND[outcome]}" if outcome in KIND else "badge"
    return f'<span class="{kind}">{_e(_label(outcome))}</span>'


def _label(outcome: str) -> str:
    return outcome.replace("_", " ")


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value[:10]) + (", …]" if len(value) > 10 else "]")
    return str(value)


def _value_text(value: dict[str, Any]) -> str:
    return "—" if value["value"] is None else _e(f"{value['value']:.4g}")


def _limit_text(value: dict[str, Any], rule: str) -> str:
    if value["threshold"] is None:
        return "—"
    limit = _e(f"{value['threshold']:g}")
    return f'<span class="num">{limit} <span class="muted small">({rule})</span></span>'


def _rule(value: dict[str, Any], spec: dict[str, Any]) -> str:
    """``min`` when the value breaches below its threshold, else ``max``."""
    if value["metric"] in P_VALUE_METRICS:
        return "min"
    if value["signal"] == "genai_quality":
        return "min"
    if value["signal"] == "model_performance":
        bounds: dict[str, Any] = next(
            (
                s["model_performance"]
                for s in spec.get("signals") or []
                if s.get("model_performance")
            ),
            {},
        )
        return "min" if bounds.get("min") is not None else "max"
    return "max"


def _point_text(point: dict[str, Any]) -> str:
    if point["value"] is None:
        return "not computed: " + str((point.get("details") or {}).get("reason", ""))
    limit = "" if point["threshold"] is None else f" (threshold {point['threshold']:g})"
    return f"{point['value']:.4g}{limit}, {_label(point['outcome'])}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
