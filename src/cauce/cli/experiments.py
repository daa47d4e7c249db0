"""``cauce experiments``."""

from __future__ import annotations

import typer

from cauce.cli.output import (
    JSON_OPTION_HELP,
    console,
    print_json,
    table,
    tag_values,
    tags_text,
    when,
)

app = typer.Typer(help="List, create and delete experiments.", no_args_is_help=True)


@app.command("list")
def list_(
    all_: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List experiments.

    Example:
        cauce experiments list --json
    """
    from cauce.tracking.experiments import list_experiments

    found = list_experiments(include_deleted=all_)
    if as_json:
        print_json([e.to_dict() for e in found])
        return
    table(
        "Experiments",
        ["ID", "Name", "Stage", "Created", "Tags"],
        [
            [
                e.experiment_id,
                e.name,
                e.lifecycle_stage,
                when(e.creation_time),
                " ".join(f"{k}={v}" for k, v in sorted(e.tags.items())),
            ]
            for e in found
        ],
        empty="No experiments yet: start_run(experiment=NAME) makes one; or run cauce demo.",
        optional=1,
    )


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Experiment name."),
    description: str = typer.Option(None, "--description", "-d", help="What it is for."),
) -> None:
    """Create an experiment.

    Example:
        cauce experiments create churn -d "Customer churn models"
    """
    from cauce.tracking.experiments import create_experiment

    experiment = create_experiment(name, description)
    console.print(f"Created experiment {experiment.name} ({experiment.experiment_id})")


@app.command("tag")
def tag(
    name: str = typer.Argument(..., help="Experiment name or id."),
    values: list[str] = typer.Argument(None, help="Tags to set, each KEY=VALUE."),
    remove: list[str] = typer.Option([], "--remove", "-r", help="A tag key to take off."),
) -> None:
    """Set or remove an experiment's tags (its team, its project).

    Example:
        cauce experiments tag churn team=growth project=retention
        cauce experiments tag churn --remove project
    """
    from cauce.tracking.experiments import delete_experiment_tag, set_experiment_tags

    experiment = set_experiment_tags(name, tag_values(values, remove))
    for key in remove:
        experiment = delete_experiment_tag(name, key)
    shown = tags_text(experiment.tags) or "none"
    console.print(f"Experiment {experiment.name}'s tags: {shown}")


@app.command("delete")
def delete(name: str = typer.Argument(..., help="Experiment name or id.")) -> None:
    """Mark an experiment deleted (its runs stay readable).

    Example:
        cauce experiments delete churn
    """
    from cauce.tracking.experiments import delete_experiment

    experiment = delete_experiment(name)
    console.print(f"Deleted experiment {experiment.name}")


@app.command("restore")
def restore(name: str = typer.Argument(..., help="Experiment name or id.")) -> None:
    """Bring a deleted experiment back (new runs may start in it again).

    Example:
        cauce experiments restore churn
    """
    from cauce.tracking.experiments import restore_experiment

    experiment = restore_experiment(name)
    console.print(f"Restored experiment {experiment.name}")
