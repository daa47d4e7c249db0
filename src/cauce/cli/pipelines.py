"""``cauce pipelines``: run, list and show pipeline runs."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run cached pipelines and inspect their runs.", no_args_is_help=True)
