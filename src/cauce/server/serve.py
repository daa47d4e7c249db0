"""Running the server: uvicorn with one or several worker processes over the home workspace."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from cauce.errors import InvalidInput
from cauce.workspace import current

if TYPE_CHECKING:
    from starlette.types import ASGIApp


# How the factory in each worker process learns the address the server binds.
_HOST_VARIABLE = "CAUCE_SERVER_BIND_HOST"


def app_from_env() -> ASGIApp:
    """The app over this process's workspace (uvicorn's factory in each worker process)."""
    from cauce.server.app import create_app

    home = current()
    if home.remote:
        raise InvalidInput(
            "CAUCE_SERVER_URL is set: a server serves a local workspace, not another server's",
            hint="unset CAUCE_SERVER_URL where `cauce server` runs",
        )
    home.store.upgrade()
    return create_app(home, host=os.environ.get(_HOST_VARIABLE, "127.0.0.1"))


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    *,
    announce: Callable[[], None] | None = None,
) -> None:
    """Serve the current workspace on ``host:port`` until interrupted; ``announce`` is called
    once the workspace is known to be servable, before the workers start."""
    import uvicorn

    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, not {workers}")
    os.environ[_HOST_VARIABLE] = host
    app_from_env()  # fail here, with a readable error, before any worker starts
    from cauce.serving.workers import bind

    # A port in use is one readable line before the announcement, not uvicorn's log and exit 3.
    bind(host, port).close()
    if announce is not None:
        announce()
    uvicorn.run(
        "cauce.server.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
    )
