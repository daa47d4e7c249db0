"""``cauce data validate``: run a check suite over a dataset version (the quality bar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, err_console, print_json, table


def validate(
    ref: str = typer.Argument(
        ...,
        metavar="NAME@VERSION",
        help="Dataset version, NAME@VERSION (or NAME for the newest).",
    ),
    suite: Path = typer.Option(..., "--suite", "-s", help="Check suite YAML file."),
    as_of: str = typer.Option(
        None, "--as-of", help="ISO time that freshness checks measure from (default: now)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run a check suite over a dataset version; exit 1 when an error-severity check fails.

    Warn-severity failures are printed but do not change the exit code.

    Example:
        cauce data validate customers@3 --suite checks.yaml
    """
    from cauce.data.checks import validate as run_suite

    result = run_suite(ref, suite, as_of=as_of, raise_on_failure=False)
    if as_json:
        print_json(result.to_dict())
    else:
        table(
            f"Check suite {result.suite} on {result.dataset}",
            ["Check", "Severity", "Result", "Detail"],
            [
                [c.name, c.severity, "pass" if c.passed else "FAIL", c.message]
                for c in result.checks
            ],
        )
        for check in result.checks:
            if not check.passed and check.sample:
                _failing_rows(check.name, check.failing, check.sample)
        for check in result.warnings:
            console.print(f"warning: {check.name}: {check.message}", soft_wrap=True, markup=False)
    if not result.passed:
        for check in result.failures:
            err_console.print(
                f"failed: {check.name}: {check.message}", soft_wrap=True, markup=False
            )
        raise typer.Exit(1)
    if not as_json:
        console.print(f"Passed: {result.dataset} meets check suite {result.suite}")


def _failing_rows(name: str, failing: int | None, sample: list[dict[str, Any]]) -> None:
    """The sampled rows a check failed on: their position in the table and every column, each
    value as stored (rounded, 40.00001 would read as 40 beside a range's max of 40)."""
    columns = [c for c in sample[0] if c != "_row"]
    of = f" of {failing:,}" if failing is not None else ""
    console.print(
        f"Rows failing {name}, the first {len(sample)}{of} (row numbers count from 0):",
        soft_wrap=True,
        markup=False,
    )
    table(
        None,
        ["Row", *columns],
        [[row["_row"], *[row.get(c) for c in columns]] for row in sample],
    )
