"""``cauce indexes``: RAG indexes, their versions, refreshes and queries."""

from __future__ import annotations

from pathlib import Path

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when

app = typer.Typer(help="RAG indexes: versions, refresh and search.", no_args_is_help=True)


@app.command("apply")
def apply(
    path: Path = typer.Option(..., "--file", "-f", help="A spec file or folder."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Apply specs (as cauce apply) and refresh every Index they declare now.

    Example:
        cauce indexes apply -f docs-index.yaml
    """
    from cauce.genai.indexes.registry import refresh
    from cauce.specs import apply as apply_specs

    applied = [a for a in apply_specs(path) if a.kind == "Index"]
    results = [refresh(a.name) for a in applied]
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    for result in results:
        _report(result)


@app.command("refresh")
def refresh_(
    name: str = typer.Argument(..., help="Index name."),
    stage: bool = typer.Option(
        False,
        "--stage",
        help="Build the version without making it current (for a canary; "
        "`cauce indexes current` puts it out).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Read the source again and build the next version (only what changed is embedded).

    Example:
        cauce indexes refresh docs
        cauce indexes refresh docs --stage     # then a flow deployment pins it: indexes: {docs: 2}
    """
    from cauce.genai.indexes.registry import refresh

    result = refresh(name, promote=not stage)
    if as_json:
        print_json(result.to_dict())
        return
    _report(result)
    if stage and result.created:
        version = result.version.version
        console.print(
            f"staged: searches keep the current version; `cauce indexes current {name} "
            f"{version}` makes it current, a flow deployment pins it with indexes: "
            f"{{{name}: {version}}}"
        )


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List indexes with their current version and next refresh.

    Example:
        cauce indexes list
    """
    from cauce.genai.indexes.records import list_indexes

    found = list_indexes()
    if as_json:
        print_json([i.to_dict() for i in found])
        return
    table(
        "Indexes",
        ["Name", "Source", "Version", "Refreshed", "Next refresh"],
        [
            [
                i.name,
                i.spec["source"].get("path") or f"dataset {i.spec['source'].get('dataset')}",
                i.current_version,
                when(i.refreshed_at),
                when(i.next_refresh_at),
            ]
            for i in found
        ],
        empty="No indexes yet: apply an Index spec, then cauce indexes refresh NAME.",
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Index name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show an index's versions: documents, chunks, model, what changed, files skipped.

    Example:
        cauce indexes show docs
    """
    from cauce.genai.indexes.records import get_index, versions

    info = get_index(name)
    found = versions(name)
    if as_json:
        print_json({**info.to_dict(), "versions": [v.to_dict() for v in found]})
        return
    table(
        f"Versions of {name}",
        ["Version", "Documents", "Chunks", "New/changed/deleted", "Embedded", "Model", "Built"],
        [
            [
                v.version,
                v.document_count,
                v.chunk_count,
                "{new}/{changed}/{deleted}".format(**v.stats["changes"]),
                v.stats["embedded"],
                v.embedding_model,
                when(v.created_at),
            ]
            for v in found
        ],
    )
    skipped = found[-1].skipped if found else []
    if skipped:
        table(
            "Skipped files", ["Document", "Reason"], [[s["document"], s["reason"]] for s in skipped]
        )


@app.command("current")
def current_(
    name: str = typer.Argument(..., help="Index name."),
    version: int = typer.Argument(..., help="The version searches read from now on."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the history)."),
) -> None:
    """Make a version the one searches read.

    Roll back to an older one, or put a staged one out without a rollout.

    Example:
        cauce indexes current docs 3 --reason "v4 lost the refunds page"
    """
    from cauce.genai.indexes.registry import set_current

    made = set_current(name, version, reason=reason)
    console.print(f"{name}: searches read version {made.version}")


@app.command("history")
def history_(
    name: str = typer.Argument(..., help="Index name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show every move of an index's current version: a refresh's, a rollout's, a person's.

    Example:
        cauce indexes history docs
    """
    from cauce.genai.indexes.registry import current_history

    moves = current_history(name)
    if as_json:
        print_json(moves)
        return
    table(
        f"Current version of {name}",
        ["When", "From", "To", "Why", "By"],
        [
            [when(m["at"]), m["from_version"] or "—", m["to_version"], m["reason"] or "", m["user"]]
            for m in moves
        ],
    )


@app.command("query")
def query_(
    name: str = typer.Argument(..., help="Index name."),
    text: str = typer.Argument(..., help="What to search for."),
    k: int = typer.Option(5, "-k", help="How many chunks."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, vector or text."),
    where: list[str] = typer.Option([], "--where", "-w", help="A metadata filter, KEY=VALUE."),
    version: int = typer.Option(None, "--version", help="An older version."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Search an index: the best chunks with their document and score.

    Example:
        cauce indexes query docs "how do I roll back?" -k 3
    """
    from cauce.errors import InvalidInput
    from cauce.genai.indexes.registry import query

    filters = {}
    for pair in where:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"a filter is written KEY=VALUE, not {pair!r}")
        filters[key] = value
    hits = query(name, text, k=k, mode=mode, where=filters or None, version=version)
    if as_json:
        print_json([h.to_dict() for h in hits])
        return
    table(
        f"{name}: {text}",
        ["Rank", "Score", "Document", "Text"],
        [[i, f"{h.score:.4f}", h.document_id, h.text[:160]] for i, h in enumerate(hits, 1)],
    )


@app.command("quarantine")
def quarantine_(
    name: str = typer.Argument(..., help="Index name."),
    stage: str = typer.Option(None, "--stage", help="indexing or retrieval only."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List the chunks an injection scan quarantined at indexing or dropped at retrieval.

    Example:
        cauce indexes quarantine docs --stage indexing
    """
    from cauce.genai.indexes.quarantine import quarantined

    found = quarantined(name, stage=stage)
    if as_json:
        print_json(found)
        return
    table(
        f"Quarantine of {name}",
        ["When", "Stage", "Action", "Version", "Document", "Score", "Reasons", "Text"],
        [
            [
                when(q["at"]),
                q["stage"],
                q["action"],
                q["version"],
                q["document_id"],
                f"{q['score']:.2f}",
                ", ".join(q["reasons"]),
                q["text"][:100],
            ]
            for q in found
        ],
    )


def _report(result: object) -> None:
    from cauce.genai.indexes.registry import Refreshed

    assert isinstance(result, Refreshed)
    version = result.version
    changes = {k: len(v) for k, v in result.changes.items()}
    state = "new version" if result.created else "unchanged"
    console.print(
        f"{version.ref}: {state} · {version.document_count} documents, {version.chunk_count} "
        f"chunks · new {changes['new']}, changed {changes['changed']}, deleted "
        f"{changes['deleted']} · embedded {version.stats['embedded']}"
        + (f" · skipped {len(version.skipped)}" if version.skipped else "")
        + (
            f" · quarantined {version.stats['quarantined']}"
            if version.stats.get("quarantined")
            else ""
        )
    )
