"""Cauce: data, pipelines, tracking, registry, serving and monitoring, local-first."""

# Every command group is registered here; a CauceError becomes one line on stderr and exit 1.

from __future__ import annotations

import sys

import typer

from cauce import __version__
from cauce.cli import (
    audit,
    automation,
    checks,
    data,
    db,
    demo,
    deployments,
    endpoints,
    experiments,
    gate,
    lineage,
    models,
    monitors,
    pipelines,
    rollouts,
    runs,
    workspace,
)
from cauce.cli.output import error
from cauce.errors import CauceError

app = typer.Typer(
    name="cauce",
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command("init")(workspace.init)
app.command("demo")(demo.demo)
app.command("lineage")(lineage.lineage)
app.command("audit")(audit.audit)
app.command("apply")(automation.apply)
app.command("agent")(automation.agent)
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(data.app, name="data")
data.app.command("validate")(checks.validate)
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(automation.schedules_app, name="schedules")
app.add_typer(endpoints.app, name="endpoints")
app.add_typer(deployments.app, name="deployments")
app.add_typer(rollouts.app, name="rollouts")
app.add_typer(gate.app, name="gate")
app.add_typer(monitors.app, name="monitors")
app.add_typer(monitors.alerts_app, name="alerts")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cauce {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Cauce: data, pipelines, tracking, registry, serving and monitoring, local-first."""


def main() -> None:
    """Entry point of the ``cauce`` script."""
    try:
        app()
    except CauceError as exc:
        error(str(exc))
        sys.exit(1)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
