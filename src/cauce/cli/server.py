"""``cauce server``."""

from __future__ import annotations

import typer

from cauce.cli.output import console


def server(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve this workspace to a team: the REST API under /api/v1 (and /w/NAME/api/v1).

    Clients point CAUCE_SERVER_URL at it; every SDK call and CLI command then goes to the
    server. The OpenAPI document is at /api/v1/openapi.json.

    Example:
        cauce server --port 8080 --workers 2
        CAUCE_SERVER_URL=http://127.0.0.1:8080 cauce runs list
    """
    from cauce.server.serve import serve

    console.print(f"Cauce server on http://{host}:{port} (API at /api/v1, {workers} worker(s))")
    serve(host=host, port=port, workers=workers)
