"""``cauce audit``."""

from __future__ import annotations

import typer

from cauce.cli.output import JSON_OPTION_HELP, changes, more, print_json, table, when


def audit(
    entity: str = typer.Option(
        None,
        "--entity",
        "-e",
        help="KIND or KIND:ID (ID may be its start), e.g. model or run:3f2a9c0e.",
    ),
    action: str = typer.Option(None, "--action", "-a", help="e.g. model.alias.set or 'run.*'."),
    actor: str = typer.Option(None, "--actor", help="Only changes made by this user."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many events."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show the audit log: who changed what, when, before and after (newest first).

    Example:
        cauce audit --action 'model.alias.*' -n 20
    """
    from cauce.lineage.audit import events
    from cauce.workspace import current

    kind, _, entity_id = (entity or "").partition(":")
    found = events(
        current(),
        entity_kind=kind or None,
        entity_id=entity_id or None,
        action=action,
        actor=actor,
        limit=limit,
    )
    if as_json:
        print_json([e.to_dict() for e in found])
        return
    table(
        "Audit log",
        ["When", "Actor", "Action", "Entity", "Change"],
        [
            [
                when(e.at),
                e.actor,
                e.action,
                f"{e.entity_kind}:{e.entity_id[:8]}",
                changes(e.before, e.after),
            ]
            for e in found
        ],
        empty="No change matches." if entity or action or actor else "No change recorded yet.",
    )
    more(len(found), limit)
