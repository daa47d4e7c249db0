"""``cauce catalog``: the model catalog, and models x prompt versions compared on a dataset."""

from __future__ import annotations

from typing import Any

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when

app = typer.Typer(
    help="The model catalog (kind: CatalogModel): models, prices, and side-by-side comparisons.",
    no_args_is_help=True,
)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List catalog models.

    Example:
        cauce catalog list
    """
    from cauce.genai.catalog import list_models

    found = list_models()
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    table(
        "Catalog models",
        [
            "Name",
            "Provider",
            "Connection",
            "Model",
            "Context",
            "Price in/out",
            "Modality",
            "Updated",
        ],
        [
            [
                m.name,
                m.provider,
                m.connection,
                m.model,
                m.context_length,
                _price(m.price),
                ", ".join(m.modality),
                when(m.updated_at),
            ]
            for m in found
        ],
        empty="No catalog models yet: apply a CatalogModel spec (cauce apply -f FILE).",
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Catalog model name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a catalog model's entry.

    Example:
        cauce catalog show gpt-4o-mini
    """
    from cauce.genai.catalog import get

    found = get(name)
    if as_json:
        print_json(found.to_dict())
        return
    rows = [
        [key, value]
        for key, value in found.to_dict().items()
        if key not in ("name", "id", "created_at", "updated_at")
    ]
    rows += [["updated", when(found.updated_at)]]
    table(f"Catalog model {found.name}", ["Field", "Value"], rows)


@app.command("delete")
def delete(name: str = typer.Argument(..., help="Catalog model name.")) -> None:
    """Delete a catalog model; calls to it are no longer priced by its entry.

    Example:
        cauce catalog delete old-model
    """
    from cauce.genai.catalog import delete as delete_model

    delete_model(name)
    console.print(f"Deleted catalog model {name}")


@app.command("compare")
def compare(
    dataset: str = typer.Option(..., "--dataset", "-d", help="Dataset version, NAME[@VERSION]."),
    models: list[str] = typer.Option(
        ..., "--models", "-m", help="Catalog models, comma-separated (A,B) or repeated."
    ),
    prompts: list[str] = typer.Option(
        ..., "--prompt", "-p", help="Prompt version: NAME@LABEL, NAME@VERSION or NAME; repeat."
    ),
    evaluators: list[str] = typer.Option(
        [], "--evaluator", "-e", help="f1, rouge_l, similarity, relevance…; repeat. None: unscored."
    ),
    variables: list[str] = typer.Option(
        [], "--var", help="VARIABLE=COLUMN: the column a prompt variable is read from."
    ),
    mapping: list[str] = typer.Option(
        [], "--map", help="INPUT=COLUMN for the evaluators, e.g. reference=expected."
    ),
    parameters: list[str] = typer.Option(
        [], "--param", help="KEY=VALUE sent with every call: temperature, max_tokens, seed…"
    ),
    judge: str = typer.Option(None, "--judge", help="Connection of the judge model."),
    judge_model: str = typer.Option(None, "--judge-model", help="Judge model."),
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="Lines at once."),
    timeout: str = typer.Option("60s", "--timeout", help="Per line (30s, 2m)."),
    html: str = typer.Option(None, "--html", help="Also write the comparison as an HTML page."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Run a dataset over every catalog model x prompt version, side by side.

    Quality, latency, tokens, cost and errors per cell: one tracked comparison run, a child
    run per cell.

    Example:
        cauce catalog compare -d qa --models gpt-4o-mini,smollm2 \\
            --prompt answer@production --prompt answer@2 -e f1 --html compare.html
    """
    from cauce.genai.catalog import compare as run_comparison

    names = [m.strip() for given in models for m in given.split(",") if m.strip()]
    result = run_comparison(
        dataset,
        names,
        prompts,
        evaluators or None,
        variables=_pairs(variables, "--var", "VARIABLE=COLUMN") or None,
        mapping=_pairs(mapping, "--map", "INPUT=COLUMN") or None,
        parameters={k: _scalar(v) for k, v in _pairs(parameters, "--param", "KEY=VALUE").items()},
        judge=judge,
        judge_model=judge_model,
        concurrency=concurrency,
        timeout=timeout,
    )
    written = result.write_html(html) if html else None
    if as_json:
        print_json({**result.to_dict(), "html": str(written) if written else None})
        return
    table(
        f"Catalog comparison on {result.dataset} (run {result.run_id})",
        result.columns(),
        result.rows(),
    )
    if written is not None:
        console.print(f"HTML page: {written}")


def _pairs(values: list[str], option: str, form: str) -> dict[str, str]:
    from cauce.errors import InvalidInput

    found = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} is written {form}, not {pair!r}")
        found[key.strip()] = value.strip()
    return found


def _scalar(text: str) -> Any:
    """A parameter's value as YAML reads it: 0.2 a number, 64 an integer, text as text."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _price(price: dict[str, float] | None) -> str:
    return "unknown" if not price else f"{price['input']:g} / {price['output']:g}"
