"""``cauce lineage``."""

from __future__ import annotations

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json


def lineage(
    ref: str = typer.Argument(
        ...,
        help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID, datasets:/NAME@VERSION "
        "or artifacts:/SHA256 (a run id or a sha256 may be its start: 4 or more characters).",
    ),
    direction: str = typer.Option(
        "both", "--direction", "-d", help="upstream, downstream or both."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show where an entity came from and what was made from it.

    Example:
        cauce lineage models:/churn/3 --direction upstream
        cauce lineage artifacts:/3f2a9c01 --direction upstream
    """
    from cauce.cli.refs import resolve
    from cauce.lineage.graph import walk
    from cauce.workspace import current

    ws = current()
    kind, entity_id = resolve(ref, workspace=ws)
    graph = walk(ws, kind, entity_id, direction)  # type: ignore[arg-type]
    if as_json:
        print_json(graph.to_dict())
        return
    console.print(f"[bold]{graph.root.label}[/]")
    if not graph.edges:
        console.print("  no lineage recorded")
    for edge in graph.edges:
        console.print(f"  {edge.src.label}  →  {edge.dst.label}  [dim]({edge.relation})[/]")
