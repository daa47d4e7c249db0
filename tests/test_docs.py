"""The docs name every CLI command and every setting."""

from __future__ import annotations

from pathlib import Path

import typer.main

from cauce.cli.main import app
from cauce.config import SETTINGS

DOCS = Path(__file__).parents[1] / "docs"


def _commands(group: typer.Typer, prefix: str) -> list[str]:
    click_group = typer.main.get_command(group)
    found = []

    def walk(command: object, path: str) -> None:
        children = getattr(command, "commands", None)
        if children:
            for name, child in children.items():
                walk(child, f"{path} {name}")
        else:
            found.append(path)

    walk(click_group, prefix)
    return found


def test_every_cli_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    commands = _commands(app, "cauce")
    assert len(commands) >= 15
    missing = [c for c in commands if f"`{c}" not in text]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def test_every_command_help_has_an_example() -> None:
    click_group = typer.main.get_command(app)

    def walk(command: object, path: str) -> list[str]:
        children = getattr(command, "commands", None)
        if children:
            return [m for n, c in children.items() for m in walk(c, f"{path} {n}")]
        return [] if "Example:" in (getattr(command, "help", "") or "") else [path]

    assert walk(click_group, "cauce") == []


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
