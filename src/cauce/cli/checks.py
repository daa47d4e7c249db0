"""``cauce data validate``: run a check suite over a dataset version (the quality bar)."""

from __future__ import annotations

from pathlib import Path

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
