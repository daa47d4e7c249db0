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

    banner = f"Cauce server on http://{host}:{port} (API at /api/v1, {workers} worker(s))"
    serve(host=host, port=port, workers=workers, announce=lambda: console.print(banner))


def ui(
    port: int = typer.Option(8765, help="Port to listen on (127.0.0.1 only)."),
    open_browser: bool = typer.Option(
        False, "--open", help="Open the UI in the default web browser."
    ),
) -> None:
    """Look at this workspace in a browser: the web UI on a loopback server.

    Runs and their charts, models, data, pipelines, endpoints, monitors, prompts, traces,
    lineage and the audit log, served to this machine only. For a team, run cauce server and
    open its /ui instead.

    Example:
        cauce ui --open
    """
    from cauce.server.serve import serve

    url = f"http://127.0.0.1:{port}/ui"

    def announce() -> None:
        console.print(f"Cauce UI on {url} (Ctrl-C stops)")
        if open_browser:
            import threading
            import webbrowser

            threading.Timer(1.0, webbrowser.open, args=(url,)).start()

    serve(host="127.0.0.1", port=port, workers=1, announce=announce)
