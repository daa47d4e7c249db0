"""``cauce prompts``: the prompt registry."""

from __future__ import annotations

import json

import typer

from cauce.cli.output import (
    JSON_OPTION_HELP,
    console,
    print_json,
    table,
    tag_values,
    tags_text,
    when,
)

app = typer.Typer(
    help="Prompts: immutable versions, labels and their history.", no_args_is_help=True
)


@app.command("list")
def list_(
    label: str = typer.Option(None, "--label", "-l", help="Only prompts that have this label."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List prompts with their newest version, labels and tags.

    Example:
        cauce prompts list --label production
    """
    from cauce.genai.prompts import list_prompts

    found = list_prompts(label=label)
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    tagged = any(p.tags for p in found)
    table(
        "Prompts",
        ["Name", "Latest", "Labels", "Updated", *(["Tags"] if tagged else [])],
        [
            [
                p.name,
                p.latest_version or "—",
                _labels(p.labels),
                when(p.updated_at),
                *([tags_text(p.tags)] if tagged else []),
            ]
            for p in found
        ],
        empty=f"No prompt has the label {label}."
        if label
        else "No prompts yet: apply a Prompt spec or call cauce.prompts.register.",
    )


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, prompts:/NAME/VERSION or prompts:/NAME@LABEL."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show one prompt version: its messages, variables and model parameters.

    Example:
        cauce prompts show prompts:/answer@production
    """
    from cauce.genai.prompts import load

    version = load(ref)
    if as_json:
        print_json(version.to_dict())
        return
    table(
        f"Prompt {version.name} v{version.version}",
        ["Field", "Value"],
        [
            ["Labels", ", ".join(version.labels)],
            ["Tags", tags_text(version.tags)],
            ["Commit message", version.commit_message],
            ["Registered", f"{when(version.created_at)} by {version.user}"],
            ["Variables", ", ".join(f"{k}: {v['type']}" for k, v in version.variables.items())],
            ["Model parameters", json.dumps(version.model_parameters)],
            ["Content sha256", version.content_sha256],
        ],
    )
    table(
        "Messages",
        ["Role", "Template"],
        [[m["role"], m["content"]] for m in version.messages],
    )


@app.command("versions")
def versions_(
    name: str = typer.Argument(..., help="Prompt name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List the versions of a prompt.

    Example:
        cauce prompts versions answer
    """
    from cauce.genai.prompts import versions

    found = versions(name)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    table(
        f"Versions of {name}",
        ["Version", "Labels", "Commit message", "Registered", "By"],
        [
            [v.version, ", ".join(v.labels), v.commit_message, when(v.created_at), v.user]
            for v in found
        ],
    )


@app.command("diff")
def diff_(
    name: str = typer.Argument(..., help="Prompt name."),
    a: str = typer.Argument(..., help="A version number or a label."),
    b: str = typer.Argument(..., help="Another version number or label."),
) -> None:
    """Show what changed between two versions (messages, variables, model parameters).

    Example:
        cauce prompts diff answer production 3
    """
    from cauce.genai.prompts import diff

    text = diff(name, a, b)
    if not text:
        console.print(f"{name} {a} and {b} have the same content")
        return
    # Plain stdout: a diff is piped to other tools; no markup.
    typer.echo(text, nl=False)


@app.command("label")
def label_(
    name: str = typer.Argument(..., help="Prompt name."),
    label: str = typer.Argument(..., help="Label, e.g. production."),
    version: int = typer.Argument(
        None, help="Version to point the label at; without it, where the label points now."
    ),
    reason: str = typer.Option(None, "--reason", "-r", help="Why, kept in the history."),
    delete: bool = typer.Option(False, "--delete", help="Remove the label instead."),
    history: bool = typer.Option(False, "--history", help="Show the label's moves."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Move a label to a version, remove it, show where it points or its history.

    Rolling back is moving the label back.

    Example:
        cauce prompts label answer production 3 --reason "better F1"
        cauce prompts label answer production
        cauce prompts label answer production --history
    """
    from cauce.genai.prompts import delete_label, label_history, set_label, version_by_label

    if history:
        moves = label_history(name, label)
        if as_json:
            print_json(moves)
            return
        table(
            f"History of {name}@{label}",
            ["When", "From", "To", "Reason", "By"],
            [
                [when(m["at"]), m["from_version"], m["to_version"], m["reason"], m["user"]]
                for m in moves
            ],
        )
        return
    if delete:
        delete_label(name, label, reason=reason)
        console.print(f"Removed label {label} of {name}")
        return
    if version is None:
        pointed = version_by_label(name, label)
        if as_json:
            print_json(pointed.to_dict())
            return
        console.print(f"{name}@{label} → version {pointed.version}")
        return
    target = set_label(name, label, version, reason=reason)
    console.print(f"{name}@{label} → version {target.version}")


@app.command("tag")
def tag(
    name: str = typer.Argument(..., help="Prompt name."),
    values: list[str] = typer.Argument(None, help="Tags to set, each KEY=VALUE."),
    remove: list[str] = typer.Option([], "--remove", "-r", help="A tag key to take off."),
    version: int = typer.Option(None, "--version", "-v", help="Tag this version, not the prompt."),
) -> None:
    """Set or remove the tags of a prompt (its task, its team) or of one of its versions.

    Example:
        cauce prompts tag answer task=qa team=support
        cauce prompts tag answer reviewed=yes --version 3
        cauce prompts tag answer --remove team
    """
    from cauce.genai import prompts

    given = tag_values(values, remove)
    if version is None:
        tagged = prompts.set_prompt_tags(name, given).tags
        for key in remove:
            tagged = prompts.delete_prompt_tag(name, key).tags
        console.print(f"Prompt {name}'s tags: {tags_text(tagged) or 'none'}")
        return
    tagged = prompts.set_version_tags(name, version, given).tags
    for key in remove:
        tagged = prompts.delete_version_tag(name, version, key).tags
    console.print(f"{name} v{version}'s tags: {tags_text(tagged) or 'none'}")


def _labels(labels: dict[str, int]) -> str:
    return ", ".join(f"{k}→v{v}" for k, v in labels.items())
