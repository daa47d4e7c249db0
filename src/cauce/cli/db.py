"""``cauce db``: the metadata store's schema."""

from __future__ import annotations

import typer

from cauce.cli.output import console

app = typer.Typer(help="Manage the metadata store's schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply pending schema migrations (they also run on first use).

    Example:
        CAUCE_DB_URL=postgresql+psycopg://postgres@127.0.0.1/cauce cauce db upgrade
    """
    from cauce.workspace import current

    store = current().store
    before, after = store.upgrade()
    if before == after:
        console.print(f"{store.display_url} is up to date (revision {after})")
    else:
        console.print(f"{store.display_url}: revision {before or 'empty'} -> {after}")


@app.command("current")
def current_revision() -> None:
    """Print the schema revision of the metadata store.

    Example:
        cauce db current
    """
    from cauce.workspace import current

    store = current().store
    console.print(f"{store.display_url}: revision {store.current_revision() or 'empty'}")
