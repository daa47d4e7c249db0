"""``cauce data``: versioned datasets, profiles, diffs and quality checks."""

from __future__ import annotations

import typer

app = typer.Typer(help="Versioned datasets: register, inspect, profile, diff, validate.",
                  no_args_is_help=True)
