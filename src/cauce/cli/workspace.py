"""``cauce init``."""

from __future__ import annotations

from pathlib import Path

import typer

from cauce.cli.output import console


def init(
    path: Path = typer.Argument(Path("."), help="Folder to make a workspace (default: here)."),
) -> None:
    """Create a workspace: cauce.yaml and .cauce/ (SQLite database + artifact folder).

    Example:
        cauce init my-project
    """
    from cauce.workspace import init as init_workspace

    ws = init_workspace(path)
    console.print(f"Initialised Cauce workspace in {ws.settings.root}")
    console.print(f"  metadata store: {ws.store.display_url}")
    console.print(f"  artifacts:      {ws.settings.artifacts}")
