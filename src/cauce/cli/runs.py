"""``cauce runs``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from cauce.cli.output import (
    JSON_OPTION_HELP,
    console,
    duration,
    more,
    number,
    print_json,
    table,
    when,
)

if TYPE_CHECKING:
    from cauce.workspace import Workspace

app = typer.Typer(help="List, show and compare tracked runs.", no_args_is_help=True)

RUN_ID_HELP = "Run id, or the start of one (4 or more characters) that names one run."
_PREFIX = re.compile(r"[0-9a-f]{4,31}")


def full_run_id(given: str, *, workspace: Workspace | None = None) -> str:
    """The id of the one run whose id starts with ``given`` (4 to 31 hex characters, any case,
    as the UI, the lineage and the audit log shorten ids); any other ``given`` as it is."""
    from cauce.store import only_match
    from cauce.tracking.search import search_runs

    start = given.lower()
    if not _PREFIX.fullmatch(start):
        return given
    found = search_runs(
        None,
        f"attributes.run_id LIKE '{start}%'",
        max_results=2,
        lifecycle="all",
        workspace=workspace,
    )
    return only_match(found, given, "run", "run_id").info.run_id if found else given


@app.command("list")
def list_(
    experiment: list[str] = typer.Option(
        None, "--experiment", "-e", help="Experiment name or id (repeatable); default all."
    ),
    filter_: str = typer.Option(
        None, "--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.C = '0.5'\"."
    ),
    order_by: list[str] = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.auc DESC' (repeatable)."
    ),
    max_results: int = typer.Option(100, "-n", "--max", help="At most this many runs."),
    deleted: bool = typer.Option(False, "--deleted", help="Only deleted runs (to restore)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List runs, newest first, optionally filtered and ordered.

    Example:
        cauce runs list -e churn -f "metrics.auc > 0.8" -o "metrics.auc DESC"
    """
    from cauce.tracking.search import search_runs

    found = search_runs(
        experiment or None,
        filter_,
        order_by or None,
        max_results,
        lifecycle="deleted" if deleted else "active",
    )
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    keys = sorted({k for r in found for k in r.data.metrics})  # as many as the width holds
    table(
        "Runs",
        ["Run ID", "Name", "Status", "Started", "Duration", *keys],
        [
            [
                r.info.run_id,
                r.info.run_name,
                r.info.status,
                when(r.info.start_time),
                duration(r.info.start_time, r.info.end_time),
                *[number(r.data.metrics[k]) if k in r.data.metrics else None for k in keys],
            ]
            for r in found
        ],
        empty=_no_runs(experiment, filter_, deleted),
        short_ids=True,
        optional=len(keys),
    )
    more(len(found), max_results)


def _no_runs(experiments: list[str] | None, filter_: str | None, deleted: bool) -> str:
    if deleted:
        return "No deleted runs."
    if experiments or filter_:
        return "No runs match."
    return "No runs yet: log one with cauce.start_run(); or run cauce demo."


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help=RUN_ID_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a run: status, source, params, metrics, tags, inputs and artifacts.

    Example:
        cauce runs show 3f2a9c0e41d84b5c9d1e2f3a4b5c6d7e
    """
    from cauce.tracking.artifacts import list_artifacts
    from cauce.tracking.experiments import get_experiment
    from cauce.tracking.runs import get_run

    run_id = full_run_id(run_id)
    run = get_run(run_id)
    files = list_artifacts(run_id)
    if as_json:
        print_json({**run.to_dict(), "artifacts": [f.__dict__ for f in files]})
        return
    info = run.info
    commit = info.source_commit or "—"
    if info.source_dirty:
        commit += " (dirty)"
    table(
        f"Run {info.run_name}",
        ["Field", "Value"],
        [
            ["Run ID", info.run_id],
            ["Experiment", f"{get_experiment(info.experiment_id).name} ({info.experiment_id})"],
            ["Status", info.status],
            ["Error", info.error],
            ["Parent run", info.parent_run_id],
            ["Started", when(info.start_time)],
            ["Ended", when(info.end_time)],
            ["User", info.user_id],
            ["Code version", commit],
            ["Entry point", info.entry_point],
            ["Python", info.python_version],
            ["Packages sha256", info.packages_hash],
        ],
    )
    for title, values in (
        ("Params", run.data.params),
        ("Metrics", run.data.metrics),
        ("Tags", run.data.tags),
    ):
        if values:
            table(title, ["Key", "Value"], [[k, number(v)] for k, v in sorted(values.items())])
    if run.inputs.dataset_inputs:
        table(
            "Inputs",
            ["Dataset", "Version", "Context", "Rows"],
            [[d.dataset, d.version, d.context, d.row_count] for d in run.inputs.dataset_inputs],
        )
    if run.inputs.dataset_references:
        table(
            "Data described by the client (not held by Cauce)",
            ["Dataset", "Context", "Source", "Digest"],
            [
                [d.name, d.context, f"{d.source_type}: {d.source}", d.digest]
                for d in run.inputs.dataset_references
            ],
        )
    if files:
        table("Artifacts", ["Path", "Bytes", "sha256"], [[f.path, f.size, f.sha256] for f in files])


@app.command("compare")
def compare(
    run_ids: list[str] = typer.Argument(..., help="Two or more run ids (or their starts)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Compare runs side by side: params and metrics, differences marked with *.

    Example:
        cauce runs compare 3f2a9c0e 8b1d7e2f
    """
    from cauce.errors import InvalidInput
    from cauce.tracking.runs import get_run

    if len(run_ids) < 2:
        raise InvalidInput("compare needs at least two run ids")
    found = [get_run(full_run_id(r)) for r in run_ids]
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    rows: list[list[Any]] = []
    for kind in ("params", "metrics"):
        keys = sorted({k for r in found for k in getattr(r.data, kind)})
        for key in keys:
            values = [getattr(r.data, kind).get(key) for r in found]
            marker = "*" if len({repr(v) for v in values}) > 1 else ""
            rows.append([f"{marker}{kind}.{key}", *[number(v) for v in values]])
    table("Run comparison", ["", *[r.info.run_name for r in found]], rows)
    console.print("[dim]* differs between runs[/]")


@app.command("download")
def download(
    run_id: str = typer.Argument(..., help=RUN_ID_HELP),
    path: str = typer.Argument(".", help="A file or folder of the run; default: every file."),
    dst: Path = typer.Option(Path("."), "--dst", "-d", help="Where to write (a folder)."),
) -> None:
    """Download a run's artifacts, each checked against its sha256.

    Example:
        cauce runs download 3f2a9c0e model -d ./churn-model
    """
    from cauce.errors import InvalidInput
    from cauce.tracking.artifacts import download_artifacts

    run_id = full_run_id(run_id)
    if dst.exists() and not dst.is_dir():
        raise InvalidInput(f"--dst {dst} is a file; name a folder", details={"field": "dst"})
    made = not dst.exists()
    dst.mkdir(parents=True, exist_ok=True)
    try:
        written = download_artifacts(run_id, path, dst)
    except Exception:
        if made and not any(dst.iterdir()):  # a typo leaves no empty folder behind
            dst.rmdir()
        raise
    console.print(
        f"Downloaded {path if path != '.' else 'every file'} of run {run_id} to {written}"
    )


@app.command("delete")
def delete(run_id: str = typer.Argument(..., help=RUN_ID_HELP)) -> None:
    """Mark a run deleted: lists and searches leave it out; cauce runs restore brings it back.

    Example:
        cauce runs delete 3f2a9c0e
    """
    from cauce.tracking.runs import delete_run

    run_id = full_run_id(run_id)
    delete_run(run_id)
    console.print(f"Deleted run {run_id}")


@app.command("restore")
def restore(run_id: str = typer.Argument(..., help=RUN_ID_HELP)) -> None:
    """Bring a deleted run back.

    Example:
        cauce runs restore 3f2a9c0e
    """
    from cauce.tracking.runs import restore_run

    run_id = full_run_id(run_id)
    restore_run(run_id)
    console.print(f"Restored run {run_id}")
