"""Cauce: data, pipelines, tracking, registry, serving, monitoring and GenAI, local-first."""

# Every command group is registered here. A CauceError (a user mistake or a failed backend) is
# one line on stderr and exit 1; anything else is a bug: one "internal error" line naming the
# file that holds its traceback, and exit 2.

from __future__ import annotations

import inspect
import sys
import tempfile
import traceback
from pathlib import Path

import typer

from cauce import __version__
from cauce.cli import (
    audit,
    automation,
    catalog,
    checks,
    connections,
    data,
    db,
    demo,
    deployments,
    endpoints,
    evals,
    experiments,
    flows,
    gate,
    indexes,
    lineage,
    llms,
    models,
    monitors,
    pipelines,
    prompts,
    rollouts,
    runs,
    server,
    tokens,
    traces,
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
app.command("server")(server.server)
app.command("ui")(server.ui)
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
app.add_typer(prompts.app, name="prompts")
app.add_typer(connections.app, name="connections")
app.add_typer(catalog.app, name="catalog")
app.add_typer(traces.app, name="traces")
app.add_typer(flows.app, name="flows")
app.add_typer(evals.app, name="evals")
app.add_typer(indexes.app, name="indexes")
app.add_typer(llms.app, name="llms")
app.add_typer(tokens.app, name="tokens")
app.add_typer(db.app, name="db")


def reflowed(doc: str) -> str:
    """Help text with each prose paragraph on one line, for the terminal to wrap: typer keeps
    a docstring's line breaks, which cut sentences wherever the source did. Indented lines
    (examples) and list items keep lines of their own."""
    paragraphs = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            own = line.startswith((" ", "- ", "* ")) or (lines and lines[-1].startswith(" "))
            if lines and not own:
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    summary, *rest = paragraphs
    # One blank line more after the summary: typer dedents the rest as one block
    # (inspect.cleandoc, which measures the indent from the second line), and an example
    # that came first lost its own indent.
    return "\n\n\n".join([summary, "\n\n".join(rest)]) if rest else summary


def _reflow_help(group: typer.Typer) -> None:
    for command in group.registered_commands:
        doc = command.help or inspect.getdoc(command.callback)
        if isinstance(doc, str):
            command.help = reflowed(doc)
    for subgroup in group.registered_groups:
        if subgroup.typer_instance is not None:
            _reflow_help(subgroup.typer_instance)


_reflow_help(app)


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
    """Cauce: data, pipelines, tracking, registry, serving, monitoring and GenAI, local-first."""


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
    except BrokenPipeError:  # `cauce ... | head`: the reader left; nothing to report
        sys.stderr.close()
        sys.exit(1)
    except Exception as exc:  # a bug, not a user mistake: keep the traceback, show one line
        try:
            kept = f"traceback in {_save_traceback()}"
        except OSError as why:  # nowhere to write it: say so rather than fail a second time
            kept = f"traceback not kept: {why}"
        error(f"{type(exc).__name__}: {exc} ({kept}; please report it)", label="internal error")
        sys.exit(2)


def _save_traceback() -> Path:
    """Write the current exception's traceback to a new file; its path.

    The workspace's ``.cauce/logs/`` when there is one, else the system's temporary folder.
    """
    from cauce.config import load_settings

    text = traceback.format_exc()
    try:
        folder = load_settings().state_dir / "logs"
        if not folder.parent.is_dir():
            raise FileNotFoundError(folder.parent)
        folder.mkdir(exist_ok=True)
    except Exception:  # no usable workspace: the error may be about the workspace itself
        folder = Path(tempfile.gettempdir())
    handle, path = tempfile.mkstemp(prefix="cauce-internal-error-", suffix=".txt", dir=folder)
    with open(handle, "w") as file:
        file.write(text)
    return Path(path)


if __name__ == "__main__":
    main()
