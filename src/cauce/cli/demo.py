"""``cauce demo``."""

from __future__ import annotations

import typer


def demo(
    fast: bool = typer.Option(False, "--fast", help="Same story on less data (for tests)."),
) -> None:
    """Run the demo story in the current workspace: data to a served, monitored, retrained model.

    Example:
        cauce demo --fast
    """
    from cauce.demo.story import run

    run(fast=fast)
