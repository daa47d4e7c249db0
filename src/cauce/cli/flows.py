"""``cauce flows``: run flows on one input or over a dataset, and compare variants."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, number, print_json, table, when

app = typer.Typer(help="Flows: DAGs of prompts, LLM calls and Python nodes.", no_args_is_help=True)

if TYPE_CHECKING:
    from cauce.genai.flows import Flow

VARIANT_HELP = "Node variants, NODE=VARIANT[,NODE=VARIANT]."


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List flows with their newest version.

    Example:
        cauce flows list
    """
    from cauce.genai.flows import list_flows

    found = list_flows()
    if as_json:
        print_json([f.to_dict() for f in found])
        return
    table(
        "Flows",
        ["Name", "Latest", "Kind", "Updated"],
        [[f.name, f.latest_version, f.kind, when(f.updated_at)] for f in found],
        empty="No flows yet: apply a Flow spec or register a @cauce.flow.",
    )


@app.command("test")
def test(
    flow: str = typer.Argument(..., help="NAME, flows:/NAME/VERSION, or a spec FILE to apply."),
    inputs: list[str] = typer.Option([], "--input", "-i", help="An input, NAME=VALUE."),
    variant: str = typer.Option(None, "--variant", "-v", help=VARIANT_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run a flow once on the given inputs and print its outputs, tokens and trace.

    Example:
        cauce flows test rag-answer -i question="What is a canary rollout?"
    """
    from cauce.errors import InvalidInput

    loaded = _load(flow)
    values = {}
    for pair in inputs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"an input is written NAME=VALUE, not {pair!r}")
        values[name] = value
    result = loaded.run(values, variant=variant)
    if as_json:
        print_json({"flow": loaded.uri, **result.to_dict()})
    else:
        for key, value in result.outputs.items():
            console.print(f"[bold]{key}[/bold]: {value}", markup=True, highlight=False)
        console.print(
            f"{loaded.uri} · {result.status} · {result.latency_ms:.0f} ms · tokens "
            f"{result.input_tokens}/{result.output_tokens} · trace {result.trace_id}"
        )
    if result.status != "ok":
        raise InvalidInput(f"the line failed: {result.error}")


@app.command("run")
def run(
    flow: str = typer.Argument(..., help="NAME, flows:/NAME/VERSION, or a spec FILE to apply."),
    data: str = typer.Option(..., "--data", "-d", help="Dataset version, NAME[@VERSION]."),
    mapping: list[str] = typer.Option([], "--map", "-m", help="INPUT=COLUMN."),
    variant: str = typer.Option(None, "--variant", "-v", help=VARIANT_HELP),
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Lines at once."),
    timeout: str = typer.Option("60s", "--timeout", help="Per line: 30s, 2m..."),
    retries: int = typer.Option(0, "--retries", help="Retries of a line that failed."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run a flow over every line of a dataset version.

    The answers are stored as a dataset version, the run tracked.

    Example:
        cauce flows run rag-answer --data questions@1 -c 4 --timeout 60s
    """
    from cauce.genai.batches import run as run_batch

    result = run_batch(
        _load(flow),
        data,
        mapping=_mapping(mapping),
        variant=variant,
        concurrency=concurrency,
        timeout=timeout,
        retries=retries,
    )
    if as_json:
        print_json(result.to_dict())
        return
    _results_table([result])


@app.command("compare")
def compare(
    flow: str = typer.Argument(..., help="NAME, flows:/NAME/VERSION, or a spec FILE to apply."),
    data: str = typer.Option(..., "--data", "-d", help="Dataset version, NAME[@VERSION]."),
    variants: list[str] = typer.Option(
        ...,
        "--variant",
        "-v",
        help="A variant to run (repeat); 'default' runs the flow as written.",
    ),
    mapping: list[str] = typer.Option([], "--map", "-m", help="INPUT=COLUMN."),
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Lines at once."),
    timeout: str = typer.Option("60s", "--timeout", help="Per line."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run several variants over the same dataset version and show them side by side.

    Example:
        cauce flows compare rag-answer -d questions@1 -v default -v generate=concise
    """
    from cauce.genai.batches import compare as compare_variants

    results = compare_variants(
        _load(flow),
        data,
        [None if v == "default" else v for v in variants],
        mapping=_mapping(mapping),
        concurrency=concurrency,
        timeout=timeout,
    )
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    _results_table(results)


def _results_table(results: list) -> None:  # type: ignore[type-arg]
    keys = ["lines", "error_rate", "latency_p50_ms", "input_tokens", "output_tokens", "cost"]
    table(
        "Batch runs",
        ["Variant", "Run", "Lines dataset", *keys],
        [
            [r.variant or "default", r.run_id, r.lines.ref]
            + [number(r.metrics[k]) if k in r.metrics else None for k in keys]
            for r in results
        ],
        short_ids=True,
        optional=len(keys),
    )


def _load(flow: str) -> Flow:
    """A flow by reference, or the flow a spec file declares (applied first)."""
    from cauce.errors import InvalidInput
    from cauce.genai.flows import load
    from cauce.specs import apply

    path = Path(flow)
    if flow.endswith((".yaml", ".yml")) or path.is_file():
        applied = [a for a in apply(path) if a.kind == "Flow"]
        if len(applied) != 1:
            raise InvalidInput(f"{flow} must declare one Flow, not {len(applied)}")
        return load(applied[0].name)
    return load(flow)


def _mapping(pairs: list[str]) -> dict[str, str] | None:
    from cauce.errors import InvalidInput

    if not pairs:
        return None
    found = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep:
            raise InvalidInput(f"a mapping is written INPUT=COLUMN, not {pair!r}")
        found[name] = f"${{data.{column}}}"
    return found
