"""``cauce models``: the model registry."""

from __future__ import annotations

from pathlib import Path

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, number, print_json, table, when

app = typer.Typer(
    help="Registered models, versions, aliases and model cards.", no_args_is_help=True
)
alias_app = typer.Typer(
    help="Move, remove and trace aliases (champion, challenger…).", no_args_is_help=True
)
app.add_typer(alias_app, name="alias")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List registered models.

    Example:
        cauce models list
    """
    from cauce.registry.models import list_models

    found = list_models()
    if as_json:
        print_json([m.to_dict() for m in found])
        return
    table(
        "Models",
        ["Name", "Latest", "Aliases", "Updated"],
        [
            [
                m.name,
                m.latest_version,
                ", ".join(f"{a}→v{v}" for a, v in m.aliases.items()),
                when(m.updated_at),
            ]
            for m in found
        ],
        empty="No models yet: log_model(..., registered_model=NAME); or run cauce demo.",
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a model: description, tags, aliases and versions.

    Example:
        cauce models show churn
    """
    from cauce.registry.models import get_model, versions

    model = get_model(name)
    found = versions(name)
    if as_json:
        print_json({**model.to_dict(), "versions": [v.to_dict() for v in found]})
        return
    table(
        f"Model {model.name}",
        ["Field", "Value"],
        [
            ["Description", model.description],
            ["Created", when(model.created_at)],
            ["Latest version", model.latest_version],
            ["Aliases", ", ".join(f"{a}→v{v}" for a, v in model.aliases.items())],
            ["Tags", ", ".join(f"{k}={v}" for k, v in model.tags.items())],
        ],
    )
    _versions_table(found)


@app.command("versions")
def versions_(
    name: str = typer.Argument(..., help="Model name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List the versions of a model.

    Example:
        cauce models versions churn --json
    """
    from cauce.registry.models import versions

    found = versions(name)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    _versions_table(found)


@app.command("register")
def register_(
    uri: str = typer.Argument(..., help="A run's model: runs:/RUN_ID/PATH."),
    name: str = typer.Argument(..., help="Model name (created when new)."),
    description: str = typer.Option(None, "--description", "-d", help="The version's."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Register a model a run logged as the model's next version.

    Example:
        cauce models register runs:/3f2a.../model churn
    """
    from cauce.registry.models import register

    version = register(uri, name, description=description)
    if as_json:
        print_json(version.to_dict())
        return
    console.print(f"Registered {uri} as {version.name} version {version.version}")


def _versions_table(found: list) -> None:  # type: ignore[type-arg]
    table(
        "Versions",
        ["Version", "Aliases", "Flavor", "Run", "Registered", "By"],
        [
            [v.version, ", ".join(v.aliases), v.flavor, v.run_id, when(v.created_at), v.user]
            for v in found
        ],
        short_ids=True,
    )


@alias_app.command("set")
def alias_set(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias, e.g. champion."),
    version: int = typer.Argument(..., help="Version number the alias points at."),
) -> None:
    """Point an alias at a version (its previous target is kept in the history).

    Example:
        cauce models alias set churn champion 3
    """
    from cauce.registry.models import set_alias

    target = set_alias(name, alias, version)
    console.print(f"{name}@{alias} → version {target.version}")


@alias_app.command("delete")
def alias_delete(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to remove."),
) -> None:
    """Remove an alias.

    Example:
        cauce models alias delete churn challenger
    """
    from cauce.registry.models import delete_alias

    delete_alias(name, alias)
    console.print(f"Removed alias {alias} of {name}")


@alias_app.command("history")
def alias_history_(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Option(None, "--alias", "-a", help="Only this alias."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show every move of a model's aliases.

    Example:
        cauce models alias history churn -a champion
    """
    from cauce.registry.models import alias_history

    moves = alias_history(name, alias)
    if as_json:
        print_json(moves)
        return
    table(
        f"Alias history of {name}",
        ["When", "Alias", "From", "To", "By"],
        [[when(m["at"]), m["alias"], m["from_version"], m["to_version"], m["user"]] for m in moves],
    )


@app.command("card")
def card(
    uri: str = typer.Argument(..., help="models:/NAME/VERSION or models:/NAME@ALIAS."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the Markdown to a file."),
) -> None:
    """Print (or write) the generated model card of a version, in Markdown.

    Example:
        cauce models card models:/churn@champion -o card.md
    """
    from cauce.registry.card import model_card

    text = model_card(uri)
    if output:
        output.write_text(text)
        console.print(f"Wrote the model card of {uri} to {output}")
    else:
        typer.echo(text, nl=False)


@app.command("evaluate")
def evaluate(
    uri: str = typer.Argument(
        ..., metavar="MODEL_URI", help="models:/NAME/VERSION or models:/NAME@ALIAS."
    ),
    data: str = typer.Option(
        ..., "--data", "-d", help="Dataset version, NAME@VERSION (or NAME for the newest)."
    ),
    label: str = typer.Option(
        ..., "--label", "-l", help="The label column (left out of the features)."
    ),
    prediction: str = typer.Option(
        None, "--prediction", help="The output column to score when the model returns several."
    ),
    positive: str = typer.Option(
        None,
        "--positive",
        help="The positive class (default, from the model's classes: 1, True, or the greatest).",
    ),
    average: str = typer.Option(
        None,
        "--average",
        help="binary, micro, macro or weighted (default: binary for two known classes, else "
        "macro).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Score a dataset version with a model version and store the metrics (once).

    Classification labels get accuracy, precision, recall, f1 and roc_auc; numeric labels get
    mae, rmse and r2 (see docs/gates.md). Evaluating again returns the stored evaluation.

    Example:
        cauce models evaluate models:/churn/4 --data customers_holdout@3 --label churned
    """
    from cauce.registry.evaluations import evaluate as run_evaluation

    result = run_evaluation(
        uri,
        data,
        label=label,
        prediction=prediction,
        positive=positive,
        average=average,  # type: ignore[arg-type]  # checked by evaluate
    )
    if as_json:
        print_json(result.to_dict())
        return
    counted = ", ".join(
        f"{k} {v}" for k, v in (("positive", result.positive), ("average", result.average)) if v
    )
    table(
        f"{result.model_uri} on {result.dataset} ({result.task}, {result.rows} rows"
        + (f"; {counted})" if counted else ")"),
        ["Metric", "Value"],
        [[k, number(v)] for k, v in result.metrics.items()]
        + [[k, f"not computed: {why}"] for k, why in result.not_computed.items()],
    )
