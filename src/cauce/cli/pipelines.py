"""``cauce pipelines``: run, list and show pipeline runs."""

from __future__ import annotations

import typer

from cauce.cli.output import (
    JSON_OPTION_HELP,
    console,
    duration,
    more,
    print_json,
    table,
    took,
    when,
)

app = typer.Typer(help="Run cached pipelines and inspect their runs.", no_args_is_help=True)


@app.command("run")
def run(
    target: str = typer.Argument(..., help="FILE.py:NAME of a @cauce.pipeline function."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="key=value, converted to the parameter's annotated type."
    ),
    executor: str = typer.Option("local", "--executor", "-x", help="local or process."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Run every step, cached or not."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run a pipeline from a Python file; exits 1 when a step fails.

    Example:
        cauce pipelines run pipelines/training.py:training -p source=data/customers.csv
    """
    from cauce.errors import CauceError
    from cauce.pipelines.loading import load_pipeline, parse_params

    pipeline = load_pipeline(target)
    params = parse_params(pipeline, param)
    result = pipeline.run(executor=executor, cache=not no_cache, **params)
    if as_json:
        print_json(result.to_dict())
    else:
        _steps_table(result)
        console.print(f"Pipeline run {result.id}: {result.status}")
    if not result.succeeded:
        raise CauceError(f"pipeline run {result.id} failed: {result.error}", code="pipeline-failed")


@app.command("list")
def list_(
    pipeline: str = typer.Option(None, "--pipeline", help="Only runs of this pipeline."),
    max_results: int = typer.Option(50, "--max", "-n", help="How many runs, newest first."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List recent pipeline runs, newest first.

    Example:
        cauce pipelines list --max 10
    """
    from cauce.pipelines.runs import list_pipeline_runs

    found = list_pipeline_runs(pipeline, max_results=max_results)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    table(
        "Pipeline runs",
        ["Run ID", "Pipeline", "Status", "Executor", "Started", "Duration", "User"],
        [
            [
                r.id,
                r.pipeline,
                r.status,
                r.executor,
                when(r.start_time),
                duration(r.start_time, r.end_time),
                r.user,
            ]
            for r in found
        ],
        empty=f"No runs of pipeline {pipeline}."
        if pipeline
        else "No pipeline has run yet: cauce pipelines run FILE.py:NAME; or run cauce demo.",
        short_ids=True,
    )
    more(len(found), max_results)


@app.command("show")
def show(
    run_id: str = typer.Argument(
        ..., help="Pipeline run id, or the start of one (4 or more characters)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a pipeline run and its steps: status, cache hit, attempts, duration, error.

    Example:
        cauce pipelines show 0f8e2c1d9a7b4e5f8c3d2a1b0e9f8d7c --json
    """
    from cauce.pipelines.runs import get_pipeline_run

    found = get_pipeline_run(run_id)
    if as_json:
        print_json(found.to_dict())
        return
    table(
        f"Pipeline run {found.id}",
        ["Field", "Value"],
        [
            ["Pipeline", found.pipeline],
            ["Status", found.status],
            ["Executor", found.executor],
            ["Params", ", ".join(f"{k}={v}" for k, v in found.params.items())],
            ["Started", when(found.start_time)],
            ["Duration", duration(found.start_time, found.end_time)],
            ["User", found.user],
            ["Error", found.error],
            *([["Idempotency key", found.idempotency_key]] if found.idempotency_key else []),
        ],
    )
    _steps_table(found)


def _steps_table(found: object) -> None:
    from cauce.pipelines.runs import PipelineRun

    assert isinstance(found, PipelineRun)
    table(
        "Steps",
        ["Step", "Status", "Cache hit", "Attempts", "Duration", "Output", "Error"],
        [
            [
                s.step,
                s.status,
                "yes" if s.cache_hit else "no",
                s.attempts,
                took(s.duration_ms) if s.took_time else None,
                f"{s.output['kind']} {s.output['sha256'][:12]}" if s.output else None,
                s.error,
            ]
            for s in found.steps.values()
        ],
    )
