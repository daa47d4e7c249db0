"""``cauce demo``."""

from __future__ import annotations

import typer


def demo(
    fast: bool = typer.Option(False, "--fast", help="Same story on less data (for tests)."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the results of every stage as one JSON document; the story goes to stderr.",
    ),
) -> None:
    """Run the demo story in the current workspace: data to a served, monitored, retrained model.

    Example:
        cauce demo --fast
    """
    from cauce.demo.story import run

    if not as_json:
        run(fast=fast)
        return
    from cauce.cli.output import err_console, print_json

    print_json(run(fast=fast, console=err_console))
