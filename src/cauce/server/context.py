"""A request's workspace and principal, as every route (REST, MLflow's, the UI's) reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cauce.server.auth import ANONYMOUS, require

if TYPE_CHECKING:
    from starlette.requests import Request

    from cauce.workspace import Workspace


def request_context(request: Request, role: str) -> tuple[Workspace, str]:
    """The request's workspace and the name of its principal, once its role allows ``role``."""
    name = request.state.workspace
    return request.app.state.workspaces.get(name), allowed(request, name, role)


def allowed(request: Request, workspace: str, role: str) -> str:
    """The name of the request's principal, once it holds ``role`` in ``workspace``."""
    require(request.state.principal, workspace, role)
    return actor(request)


def actor(request: Request) -> str:
    """Who the request's audit records name."""
    principal = request.state.principal
    # Without authentication the server's own user acts, as a local call would record.
    if principal is ANONYMOUS:
        return str(request.app.state.workspaces.home.settings.user)
    return str(principal.name)
