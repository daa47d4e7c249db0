"""``cauce apply``, ``cauce agent`` and ``cauce schedules``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.text import Text

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when

schedules_app = typer.Typer(
    help="Schedules and dataset triggers that run pipelines.", no_args_is_help=True
)


def apply(
    path: Path = typer.Option(
        ..., "--file", "-f", help="A YAML spec file, or a folder: each *.yaml/*.yml in it."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would change (fields old → new); change nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print each document's outcome as JSON."),
) -> None:
    """Apply declarative YAML specs: all of them or, when one is wrong, none.

    Kinds: Endpoint, Deployment, Rollout, Monitor, Prompt, Connection, Index, Flow,
    CatalogModel, Schedule. Every document is validated before anything is written, then all
    are applied in one transaction, in dependency order; applying the same specs again
    changes nothing.

    Example:
        cauce apply -f specs/ --dry-run
    """
    from cauce.specs import apply as apply_specs

    results = apply_specs(path, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "documents": [r.to_dict() for r in results]})
        return
    for result in results:
        console.print(Text(f"{result.kind} {result.name}: {result.outcome}"))
        for change in result.changes:
            console.print(Text(f"  {change.field}: {_value(change.old)} → {_value(change.new)}"))
    if dry_run:
        console.print("dry run: nothing was changed")


def _value(value: object) -> str:
    return "—" if value is None else json.dumps(value, default=str)


def agent(
    interval: float = typer.Option(10.0, "--interval", help="Seconds between checks."),
    once: bool = typer.Option(
        False, "--once", help="Check once, fire what is due and run the due actions, then exit."
    ),
) -> None:
    """Run the automation agent: due schedules, triggers, monitors and alert actions; rollouts.

    Alert actions run on CAUCE_ACTION_WORKERS threads beside the checks; several agents may
    share one store. Stops on Ctrl-C or SIGTERM once the actions it runs have finished.

    Example:
        cauce agent --interval 30
    """
    import signal
    import threading

    from cauce.automation.agent import Agent, Firing
    from cauce.monitoring.actions.queue import ActionRun

    def report(firing: Firing) -> None:
        detail = f"run {firing.pipeline_run_id}" if firing.pipeline_run_id else firing.error
        console.print(f"{firing.schedule}: {firing.reason} → {firing.status} ({detail})")

    def report_action(run: ActionRun) -> None:
        console.print(
            f"action {run.action} {run.target} ({run.idempotency_key}): {run.status}, "
            f"attempt {run.attempts}" + (f" ({run.error})" if run.error else "")
        )

    worker = Agent()
    if once:
        from cauce.serving.rollouts import SETTLE_MS, collected_here, tick

        for firing in worker.tick():
            report(firing)
        for run in worker.run_monitors():
            console.print(f"monitor {run.monitor}: {run.status} ({run.rows} rows)")
        for refreshed in worker.run_indexes():
            state = "new version" if refreshed.created else "unchanged"
            console.print(f"index {refreshed.version.ref}: {state}")
        worker.run_actions(on_done=report_action)
        for rollout in tick(
            settle_ms=SETTLE_MS, collected=collected_here(worker.ws), workspace=worker.ws
        ):
            console.print(f"rollout on {rollout.endpoint}: {rollout.decisions[-1].decision}")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print(f"agent watching {worker.ws.settings.root} every {interval:g}s (Ctrl-C stops)")
    worker.run(interval, stop, on_firing=report, on_action=report_action)
    console.print("agent stopped")


@schedules_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List schedules with their next run (cron) or the last dataset version seen (triggers).

    Example:
        cauce schedules list
    """
    from cauce.automation.schedules import list_schedules

    found = list_schedules()
    if as_json:
        print_json([s.to_dict() for s in found])
        return
    table(
        "Schedules",
        ["Name", "Pipeline", "When", "Enabled", "Next run", "Last run"],
        [
            [
                s.name,
                s.spec["pipeline"],
                s.spec.get("cron") or f"new version of {s.spec['trigger']['dataset']}",
                s.enabled,
                when(s.next_run_at),
                when(s.last_run_at),
            ]
            for s in found
        ],
        empty="No schedules yet: apply a Schedule spec (cauce apply -f FILE).",
    )


@schedules_app.command("firings")
def firings_(
    name: str = typer.Argument(..., help="Schedule name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show every firing of a schedule: when, why, and the pipeline run it started.

    Example:
        cauce schedules firings nightly-training
    """
    from cauce.automation.schedules import firings

    found = firings(name)
    if as_json:
        print_json(found)
        return
    table(
        f"Firings of {name}",
        ["When", "Reason", "Status", "Pipeline run", "Error"],
        [
            [when(f["at"]), f["reason"], f["status"], f["pipeline_run_id"], f["error"]]
            for f in found
        ],
    )
