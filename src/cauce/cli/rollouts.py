"""``cauce rollouts``: progressive rollouts with analysis, promotion and rollback."""

from __future__ import annotations

from pathlib import Path

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when
from cauce.errors import InvalidInput

app = typer.Typer(
    help="Rollouts: move traffic to a candidate step by step, judged by analysis.",
    no_args_is_help=True,
)


@app.command("start")
def start(
    file: Path = typer.Option(..., "--file", "-f", help="YAML file with a kind: Rollout spec."),
) -> None:
    """Start the rollout a spec file describes (the same as cauce apply -f for it).

    Example:
        cauce rollouts start -f rollout.yaml
    """
    from cauce.specs import apply, read

    if not any(isinstance(d.body, dict) and d.body.get("kind") == "Rollout" for d in read(file)):
        raise InvalidInput(f"{file} has no kind: Rollout document")
    for applied in apply(file):
        console.print(f"{applied.kind} {applied.name}: {applied.outcome}")


@app.command("status")
def status(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show the endpoint's newest rollout: state, stage, weight and every decision.

    Example:
        cauce rollouts status churn
    """
    from cauce.serving.rollouts import status as rollout_status

    rollout = rollout_status(endpoint)
    if as_json:
        print_json(rollout.to_dict())
        return
    stages = len(rollout.spec["steps"])
    stage = "mirror" if rollout.stage < 0 else f"{rollout.stage + 1}/{stages}"
    console.print(
        f"rollout of [bold]{rollout.candidate}[/] (stable {rollout.stable}) on {endpoint}: "
        f"[bold]{rollout.state}[/], stage {stage}, candidate weight {rollout.weight}%, "
        f"failures {rollout.failures}" + (f" — {rollout.reason}" if rollout.reason else "")
    )
    if rollout.state == "paused":
        console.print(
            f"resume it with cauce rollouts promote {endpoint}, "
            f"or give {rollout.stable} its traffic back with cauce rollouts abort {endpoint}"
        )
    table(
        None,
        ["When", "Stage", "Decision", "Measured", "Reason", "By"],
        [
            [
                when(d.at),
                "mirror" if d.stage < 0 else d.stage + 1,
                d.decision,
                ", ".join(
                    f"{k}={m['value']:.4g}"
                    if isinstance(m.get("value"), (int, float))
                    else f"{k}=—"
                    for k, m in d.measured.items()
                ),
                d.reason,
                d.actor,
            ]
            for d in rollout.decisions
        ],
    )


@app.command("promote")
def promote(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    full: bool = typer.Option(False, "--full", help="Skip the remaining steps: promote now."),
) -> None:
    """Resume a paused rollout at its next step, or promote the candidate at once with --full.

    Example:
        cauce rollouts promote churn
    """
    from cauce.serving.rollouts import promote as promote_rollout

    rollout = promote_rollout(endpoint, full=full)
    console.print(f"{endpoint}: rollout {rollout.state}, candidate weight {rollout.weight}%")


@app.command("abort")
def abort(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    reason: str = typer.Option("aborted by hand", "--reason", help="Why, for the record."),
) -> None:
    """Stop the rollout and give the stable deployment all its traffic back.

    Example:
        cauce rollouts abort churn --reason "latency regression seen in the dashboard"
    """
    from cauce.serving.rollouts import abort as abort_rollout

    rollout = abort_rollout(endpoint, reason=reason)
    console.print(f"{endpoint}: rollout {rollout.state}; {rollout.stable} takes the traffic again")
