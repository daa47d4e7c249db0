"""``cauce data``: versioned datasets, profiles, diffs and quality checks."""

from __future__ import annotations

from typing import Any

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, number, print_json, table, when

app = typer.Typer(
    help="Versioned datasets: register, inspect, profile, diff, validate.", no_args_is_help=True
)


@app.command("register")
def register(
    name: str = typer.Argument(..., help="Dataset name."),
    source: str = typer.Argument(
        ..., help="A .csv/.tsv/.parquet/.json/.jsonl path or fsspec URL; a query with --sql-url."
    ),
    layer: str = typer.Option(None, "--layer", "-l", help="bronze, silver or gold."),
    sql_url: str = typer.Option(
        None, "--sql-url", help="SQLAlchemy URL of a database: SOURCE is then a SQL query."
    ),
    description: str = typer.Option(None, "--description", "-d", help="Dataset description."),
    allow_schema_change: bool = typer.Option(
        False, "--allow-schema-change", help="Accept columns that differ from the newest version."
    ),
) -> None:
    """Register a file, URL or SQL query result as a new version of a dataset.

    The same content returns the existing version. A changed schema is refused unless
    --allow-schema-change is given.

    Example:
        cauce data register orders data/orders.csv --layer bronze
        cauce data register orders "SELECT * FROM orders" --sql-url postgresql+psycopg://db/shop
    """
    import cauce.data

    origin: Any = cauce.data.sql(source, url=sql_url) if sql_url else source
    version = cauce.data.register(
        name,
        origin,
        layer=layer,
        description=description,
        allow_schema_change=allow_schema_change,
    )
    console.print(
        f"{version.ref}: {version.row_count:,} rows, {len(version.schema)} columns"
        + (f" ({version.layer})" if version.layer else "")
        + f", content {version.content_hash[:12]}"
    )


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List datasets with their newest version.

    Example:
        cauce data list --json
    """
    from cauce.data import list_datasets

    found = list_datasets()
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    table(
        "Datasets",
        ["Name", "Latest", "Layer", "Rows", "Columns", "Registered"],
        [
            [v.name, v.version, v.layer, f"{v.row_count:,}", len(v.schema), when(v.created_at)]
            for v in found
        ],
        empty="No datasets yet: cauce data register NAME FILE; or run cauce demo.",
    )


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME@VERSION, or NAME for the newest version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a dataset version: source, layer, rows, content hash and schema.

    Example:
        cauce data show orders@2
    """
    from cauce.data import get_version

    version = get_version(ref)
    if as_json:
        print_json(version.to_dict())
        return
    table(
        f"Dataset {version.ref}",
        ["Field", "Value"],
        [
            ["Source", version.source],
            ["Layer", version.layer],
            ["Rows", f"{version.row_count:,}"],
            ["Content hash", version.content_hash],
            ["Artifact sha256", version.sha256],
            ["Registered", when(version.created_at)],
        ],
    )
    table("Schema", ["Column", "Type"], [[c, t] for c, t in version.schema.items()])


@app.command("versions")
def versions_(
    name: str = typer.Argument(..., help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List the versions of a dataset, oldest first.

    Example:
        cauce data versions orders
    """
    from cauce.data import versions

    found = versions(name)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    table(
        f"Versions of {name}",
        ["Version", "Layer", "Rows", "Columns", "Source", "Registered"],
        [
            [v.version, v.layer, f"{v.row_count:,}", len(v.schema), v.source, when(v.created_at)]
            for v in found
        ],
    )


@app.command("profile")
def profile(
    ref: str = typer.Argument(..., help="NAME@VERSION, or NAME for the newest version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show the column profile of a version: nulls, distincts, range, mean, quantiles.

    --json adds the top ten values and the histogram of every column.

    Example:
        cauce data profile orders@2
    """
    from cauce.data import get_profile

    found = get_profile(ref)
    if as_json:
        print_json(found)
        return
    rows = []
    for name, col in found["columns"].items():
        rate = col["null_rate"]
        quantiles = col.get("quantiles") or {}
        rows.append(
            [
                name,
                col["type"],
                "—" if rate is None else f"{rate:.2%}",
                f"{col['distinct_count']:,}",
                *(number(col.get(k)) for k in ("min", "max", "mean", "std")),
                number(quantiles.get("p50")),
                ", ".join(f"{str(t['value'])[:24]} ({t['count']:,})" for t in col["top_k"][:2]),
            ]
        )
    table(
        f"Profile of {ref}: {found['row_count']:,} rows",
        ["Column", "Type", "Nulls", "Distinct", "Min", "Max", "Mean", "Std", "p50", "Top"],
        rows,
    )


@app.command("diff")
def diff(
    before: str = typer.Argument(..., help="NAME@VERSION to compare from."),
    after: str = typer.Argument(..., help="NAME@VERSION to compare to."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Compare two dataset versions: schema changes and column statistics.

    Example:
        cauce data diff orders@1 orders@2
    """
    import cauce.data

    found = cauce.data.diff(before, after)
    if as_json:
        print_json(found.to_dict())
        return
    rows = found.row_count
    console.print(
        f"{found.before} → {found.after}: rows {rows['from']:,} → {rows['to']:,} "
        f"({rows['change']:+,})"
    )
    schema = found.schema
    changes = (
        [["added", c, "", t] for c, t in schema["added"].items()]
        + [["removed", c, t, ""] for c, t in schema["removed"].items()]
        + [["type changed", c, d["from"], d["to"]] for c, d in schema["type_changed"].items()]
    )
    if changes:
        table("Schema changes", ["Change", "Column", "Before", "After"], changes)
    else:
        console.print("Schema: unchanged")
    table(
        "Column statistics (before → after)",
        ["Column", "Null rate", "Mean", "Std", "Distinct"],
        [
            [name, *(_arrow(stats[s]) for s in ("null_rate", "mean", "std", "distinct_count"))]
            for name, stats in found.columns.items()
        ],
    )


def _arrow(change: dict[str, Any]) -> str:
    old, new = change["from"], change["to"]
    return number(old) if old == new else f"{number(old)} → {number(new)}"
