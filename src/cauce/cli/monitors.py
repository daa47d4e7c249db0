"""``cauce monitors`` and ``cauce alerts``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.text import Text

from cauce.cli.output import (
    JSON_OPTION_HELP,
    console,
    duration,
    more,
    number,
    print_json,
    table,
    took,
    when,
)

app = typer.Typer(
    help="Monitors: drift, data quality, performance and GenAI signals.", no_args_is_help=True
)
alerts_app = typer.Typer(
    help="Alerts raised by monitors, and the actions they ran.", no_args_is_help=True
)


def _values_table(title: str, values: list[dict[str, Any]], only_breaches: bool = False) -> None:
    rows = [
        [
            v["signal"],
            v["feature"],
            v["metric"],
            number(v["value"]) if v["value"] is not None else (v["details"] or {}).get("reason"),
            number(v["threshold"]),
            v["outcome"],
        ]
        for v in values
        if not only_breaches or v["outcome"] == "breached"
    ]
    table(title, ["Signal", "Feature", "Metric", "Value", "Threshold", "Outcome"], rows)


def _action_line(action: Any) -> str:
    """``webhook URL: failed after 3 attempts (error)``, ``trigger FILE: pending``."""
    tries = f" after {action.attempts} attempts" if action.attempts > 1 else ""
    return f"  {action.action} {action.target}: {action.status}{tries}" + (
        f" ({action.error})" if action.error else ""
    )


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Monitor name."),
    wait: bool = typer.Option(
        False,
        "--wait",
        help="Run an alert's actions here, in order, until each succeeded or failed "
        "(without it they are queued for `cauce agent`).",
    ),
    no_actions: bool = typer.Option(
        False, "--no-actions", help="Store the run and any alert, but queue no action."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run a monitor now over its window; exit 1 when it raised an alert or failed.

    An alert's actions are queued for `cauce agent`; --wait runs them in the foreground.

    Example:
        cauce monitors run churn-drift --wait
    """
    from cauce.monitoring.monitors import run_monitor

    result = run_monitor(name, actions=not no_actions, wait=wait)
    if as_json:
        print_json(result.to_dict())
    elif result.status == "no_data":  # every signal would say the same: not computed, why
        console.print(Text(f"Monitor {name}: no_data: {result.summary.get('reason', '')}"))
    else:
        _values_table(f"Monitor {name}: {result.status}, {result.rows:,} rows", result.values)
        if result.alert is not None:
            console.print(f"alert {result.alert.id} ({result.alert.state}): {result.alert.reason}")
            for action in result.alert.actions:
                console.print(_action_line(action))
        if result.error:
            console.print(f"failed: {result.error}")
    if result.status in ("alert", "failed"):
        raise typer.Exit(1)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List monitors with their target, reference, schedule and last run.

    Example:
        cauce monitors list
    """
    from cauce.monitoring.monitors import list_monitors

    found = list_monitors()
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    table(
        "Monitors",
        ["Name", "Target", "Reference", "Signals", "Schedule", "Next run", "Last run"],
        [
            [
                m.name,
                ", ".join(
                    f"{k} {v}" for k, v in m.spec["target"].items() if v and k != "timestamp"
                ),
                ", ".join(f"{k} {v}" for k, v in (m.spec["reference"] or {}).items() if v),
                ", ".join(next(k for k, v in s.items() if v) for s in m.spec["signals"]),
                m.spec.get("schedule"),
                when(m.next_run_at),
                when(m.last_run_at),
            ]
            for m in found
        ],
        empty="No monitors yet: apply a Monitor spec (cauce apply -f FILE); or run cauce demo.",
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Monitor name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a monitor's spec, its latest runs and the values of the last one.

    Example:
        cauce monitors show churn-drift
    """
    from cauce.monitoring.monitors import get_monitor, run_values, runs

    monitor = get_monitor(name)
    latest = runs(name, limit=10)
    values = run_values(latest[0].id) if latest else []
    if as_json:
        print_json(
            {**monitor.to_dict(), "runs": [r.to_dict() for r in latest], "last_values": values}
        )
        return
    console.print(
        f"[bold]{name}[/]  enabled: {monitor.enabled}  schedule: "
        f"{monitor.spec.get('schedule') or '—'}  next run: {when(monitor.next_run_at)}"
    )
    table(
        "Latest runs",
        ["Run ID", "Started", "Status", "Rows", "Breaches", "Took"],
        [
            [
                r.id,
                when(r.started_at),
                r.status,
                r.rows,
                r.summary.get("breaches"),
                took(r.duration_ms),
            ]
            for r in latest
        ],
        short_ids=True,
    )
    if values:
        _values_table("Last run", values)


@app.command("history")
def history_(
    name: str = typer.Argument(..., help="Monitor name."),
    signal: str | None = typer.Option(None, "--signal", help="Only this signal (data_drift …)."),
    feature: str | None = typer.Option(None, "--feature", help="Only this feature ('*': totals)."),
    metric: str | None = typer.Option(None, "--metric", help="Only this metric."),
    limit: int = typer.Option(200, "--limit", "-n", help="At most this many values."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a monitor's values over time, oldest first.

    Example:
        cauce monitors history churn-drift --signal data_drift --feature '*'
    """
    from cauce.monitoring.monitors import history

    found = history(name, signal=signal, feature=feature, metric=metric, limit=limit)
    if as_json:
        print_json(found)
        return
    table(
        f"History of {name}",
        ["When", "Signal", "Feature", "Metric", "Value", "Threshold", "Outcome"],
        [
            [
                when(v["at"]),
                v["signal"],
                v["feature"],
                v["metric"],
                number(v["value"]),
                number(v["threshold"]),
                v["outcome"],
            ]
            for v in found
        ],
    )


@app.command("report")
def report(
    name: str = typer.Argument(..., help="Monitor name."),
    html: Path = typer.Option(..., "--html", help="Write the report to this HTML file."),
    run_id: str | None = typer.Option(None, "--run", help="Report this run (default: latest)."),
) -> None:
    """Write a self-contained HTML report: distributions, values against thresholds, history.

    Example:
        cauce monitors report churn-drift --html churn-drift.html
    """
    from cauce.monitoring.report import write_report

    path = write_report(name, html, run_id=run_id)
    console.print(f"report written to {path}")


@alerts_app.command("list")
def alerts_list(
    monitor: str | None = typer.Option(None, "--monitor", "-m", help="Only this monitor's."),
    state: str | None = typer.Option(None, "--state", help="open, suppressed or resolved."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List alerts, newest first, with what breached and the actions started.

    Example:
        cauce alerts list --monitor churn-drift
    """
    from cauce.monitoring.alerts import list_alerts

    found = list_alerts(monitor=monitor, state=state, limit=limit)
    if as_json:
        print_json([a.to_dict() for a in found])
        return
    table(
        "Alerts",
        ["Alert", "When", "Monitor", "State", "Breached", "Actions"],
        [
            [
                a.id[:12],
                when(a.at),
                a.monitor,
                a.state,
                ", ".join(
                    dict.fromkeys(
                        b["signal"] if b["feature"] == "*" else b["feature"] for b in a.breaches
                    )
                ),
                ", ".join(f"{x.action}: {x.status}" for x in a.actions),
            ]
            for a in found
        ],
        empty="No alerts match." if monitor or state else "No alerts raised.",
    )
    more(len(found), limit)


@alerts_app.command("show")
def alerts_show(
    alert_id: str = typer.Argument(
        ..., help="Alert id, or the start of one (4 or more characters)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show one alert: what crossed its thresholds, and what its actions did.

    The values that crossed their thresholds, each action's status and every attempt at it
    (agent, start, end, outcome, error).

    Example:
        cauce alerts show 3f2a
    """
    from cauce.monitoring.alerts import get_alert

    alert = get_alert(alert_id)
    if as_json:
        print_json(alert.to_dict())
        return
    console.print(f"[bold]alert {alert.id}[/] ({alert.state}) {when(alert.at)}: {alert.reason}")
    _values_table("Breaches", alert.breaches)
    table(
        "Actions",
        ["Action", "Target", "Status", "Attempts", "Next attempt", "Held by", "Result", "Error"],
        [
            [
                x.action,
                x.target,
                x.status,
                x.attempts,
                when(x.next_attempt_at) if x.status == "pending" else "",
                f"{x.claimed_by} until {when(x.lease_expires_at)}" if x.claimed_by else "",
                x.result,
                x.error,
            ]
            for x in alert.actions
        ],
    )
    table(
        "Attempts",
        ["Action", "#", "Agent", "Started", "Took", "Outcome", "Error"],
        [
            [
                x.action,
                t.number,
                t.agent,
                when(t.started_at),
                duration(t.started_at, t.ended_at),
                t.outcome,
                t.error,
            ]
            for x in alert.actions
            for t in x.history
        ],
    )
