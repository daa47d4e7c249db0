"""``cauce gate``: check a model version against a gate policy, for CI pipelines."""

from __future__ import annotations

from pathlib import Path

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, error, number, print_json, table

app = typer.Typer(
    help="Quality gates: YAML policies a model version must pass.", no_args_is_help=True
)


@app.command("check")
def check(
    uri: str = typer.Argument(
        ...,
        metavar="URI",
        help="models:/NAME/VERSION, models:/NAME@ALIAS, or a prompt: prompts:/NAME/VERSION.",
    ),
    policy: Path = typer.Option(..., "--policy", "-p", help="Gate policy YAML file (kind: Gate)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Check a model or prompt version against a gate policy; exit 1 when any rule fails.

    A prompt version is checked on its evaluation runs.

    Every rule is printed with its measured value, threshold and verdict; the failing rules are
    listed on one error line. Each check is recorded in the audit log (action gate.check).

    Example:
        cauce gate check models:/churn@challenger --policy gates.yaml
        cauce gate check prompts:/answer/3 --policy prompt-gate.yaml
    """
    from rich.markup import escape

    if uri.startswith("prompts:/"):
        from cauce.genai.evals.gates import check as check_gate
    else:
        from cauce.registry.gates import check as check_gate  # type: ignore[assignment]

    result = check_gate(uri, policy)
    if as_json:
        print_json(result.to_dict())
    else:
        table(
            f"Gate {result.policy} on {result.model}",
            ["Rule", "Result", "Value", "Threshold", "Detail"],
            [
                [
                    r.name,
                    "pass" if r.passed else "FAIL",
                    _show(r.value),
                    _show(r.threshold),
                    r.message,
                ]
                for r in result.rules
            ],
        )
    if not result.passed:
        error(escape(result.reason))
        raise typer.Exit(1)
    if not as_json:
        console.print(f"Passed: {result.model} meets gate {result.policy}", markup=False)


def _show(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ", ".join(f"{k} {number(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return number(value)
