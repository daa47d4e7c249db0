"""``cauce connections``: OpenAI-compatible LLM servers and their encrypted keys."""

from __future__ import annotations

from typing import Any

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when

app = typer.Typer(
    help="Connections to OpenAI-compatible LLM servers (keys stored encrypted, never shown).",
    no_args_is_help=True,
)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List connections.

    Example:
        cauce connections list
    """
    from cauce.genai.connections import list_connections

    found = list_connections()
    if as_json:
        print_json([c.to_dict() for c in found])
        return
    table(
        "Connections",
        ["Name", "Provider", "Base URL", "Chat model", "Embeddings model", "Key", "Updated"],
        [
            [
                c.name,
                c.provider,
                c.spec.get("base_url", "(OpenAI)"),
                c.spec.get("models", {}).get("chat"),
                c.spec.get("models", {}).get("embeddings"),
                _key(c),
                when(c.updated_at),
            ]
            for c in found
        ],
        empty="No connections yet: apply a Connection spec (cauce apply -f FILE).",
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Connection name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show a connection's spec: where its key came from, never the key.

    Example:
        cauce connections show openai
    """
    from cauce.genai.connections import get

    found = get(name)
    if as_json:
        print_json(found.to_dict())
        return
    table(
        f"Connection {found.name}",
        ["Field", "Value"],
        [[key, value] for key, value in found.spec.items() if key != "name"]
        + [["key", _key(found)]],
    )


def _key(found: Any) -> str:
    """Where the connection's key is: stored encrypted, or read by each caller from its source."""
    if found.has_secret:
        return "stored, encrypted"
    source = found.spec.get("api_key")
    if isinstance(source, dict):
        where = f"env {source['env']}" if "env" in source else f"file {source.get('file')}"
        return f"read from {where} on each call"
    return "none"


@app.command("test")
def test(
    name: str = typer.Argument(..., help="Connection name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Reach the server: list its models and ask the chat model for one token.

    Example:
        cauce connections test local-llm
    """
    from cauce.genai.connections import test as test_connection

    found = test_connection(name)
    if as_json:
        print_json(found)
        return
    console.print(f"{name}: {found['base_url']} answers; models: {', '.join(found['models'])}")
    if "chat" in found:
        chat = found["chat"]
        console.print(f"chat {chat['model']}: answered in {chat['latency_ms']:.0f} ms")


@app.command("delete")
def delete(name: str = typer.Argument(..., help="Connection name.")) -> None:
    """Delete a connection and its stored key.

    Example:
        cauce connections delete old-gateway
    """
    from cauce.genai.connections import delete as delete_connection

    delete_connection(name)
    console.print(f"Deleted connection {name}")
