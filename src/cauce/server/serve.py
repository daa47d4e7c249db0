"""Running the server: uvicorn with one or several worker processes over the home workspace."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from cauce.errors import InvalidInput, NotSupported
from cauce.workspace import current

if TYPE_CHECKING:
    from starlette.types import ASGIApp


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    return create_app(home)


def serve(host: str = "127.0.0.1", port: int = 8080, workers: int = 1) -> None:
    """Serve the current workspace on ``host:port`` until interrupted."""
    import uvicorn

    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, not {workers}")
    if not is_loopback(host):
        raise NotSupported(
            f"the server would be reachable beyond this machine on {host}, and authentication "
            "is not configured",
            hint="bind to 127.0.0.1",
        )
    app_from_env()  # fail here, with a readable error, before any worker starts
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
