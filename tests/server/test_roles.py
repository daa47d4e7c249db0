"""Every route of ``cauce server`` by every role, with authentication on: no route answers
without a valid token (a UI page sends the browser to its sign-in page instead), a viewer never
writes, an editor never administers."""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from cauce.operations import OPERATIONS
from cauce.server.app import create_app
from cauce.server.tokens import create_token
from cauce.workspace import Workspace

RANK = {"viewer": 0, "editor": 1, "admin": 2}
# Open to all: for probes, and the UI's sign-in, sign-out and assets.
OPEN = {"/health", "/ui/login", "/ui/logout", "/ui/static/{path:path}"}


def _needed(route: APIRoute, method: str) -> tuple[str, str]:
    """(workspace, role) a route needs: from its operation, else by what it does."""
    if route.name in OPERATIONS:
        return "default", OPERATIONS[route.name].role
    if route.path == "/api/v1/workspaces" and method == "POST":
        return "*", "admin"
    if route.path.startswith("/api/v1/tokens"):
        # Admin of some workspace gets past the route's gate; which tokens it may manage then
        # is tests/server/test_tokens_api.py's walk.
        return "default", "admin"
    return "default", "viewer" if method in ("GET", "HEAD") else "editor"


def _routes(app: object) -> list[tuple[str, str, APIRoute]]:
    inner = app.app  # type: ignore[attr-defined]  # the FastAPI app behind the Gate
    found = []
    pending = list(inner.routes)
    while pending:
        route = pending.pop(0)
        included = getattr(route, "original_router", None)  # an included router (MLflow's)
        if included is not None:
            pending.extend(included.routes)
            continue
        if not isinstance(route, APIRoute) or route.path in OPEN:
            continue
        for method in sorted(route.methods):
            path = re.sub(r"{(\w+):path}", "a/b.txt", route.path)
            path = re.sub(r"{sha256}", "0" * 64, path)
            found.append((method, re.sub(r"{\w+}", "x", path), route))
    return found


def test_every_route_and_role(local_workspace: Workspace) -> None:
    tokens = {role: create_token(f"{role}-user", role, home=local_workspace)[1] for role in RANK}
    server_admin = create_token("root", "admin", workspace_name="*", home=local_workspace)[1]
    app = create_app(local_workspace)
    routes = _routes(app)
    assert len(routes) > 60  # Cauce's operations, blobs, workspaces, tokens, MLflow's routes
    walked = {(method, path) for method, path, _ in routes}
    assert {("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens/x/revoke")} <= walked
    with TestClient(app, base_url="http://t") as api:
        assert api.get("/api/v1/openapi.json").status_code == 401
        assert api.get("/api/v1/openapi.json", headers=_bearer(tokens["viewer"])).status_code == 200
        assert api.get("/health").status_code == 200  # for probes: says nothing of the data
        assert api.get("/ui/login").status_code == 200
        assert api.get("/ui/static/cauce.css").status_code == 200
        for i, (method, path, route) in enumerate(routes):
            where = f"{method} {path}"
            refused = _refused(path)
            anonymous = api.request(method, path, json={}, follow_redirects=False)
            assert refused(anonymous), where
            if i < 5:  # a wrong token counts as a failed login: ten in a minute lock it out
                wrong = api.request(
                    method, path, json={}, headers=_bearer("ct-nope"), follow_redirects=False
                )
                assert refused(wrong), where
            workspace, needed = _needed(route, method)
            for role, token in tokens.items():
                answer = api.request(method, path, json={}, headers=_bearer(token))
                allowed = workspace == "default" and RANK[role] >= RANK[needed]
                if allowed:
                    assert answer.status_code not in (401, 403), (where, role, answer.text)
                else:
                    assert answer.status_code == 403, (where, role, answer.text)
            answer = api.request(method, path, json={}, headers=_bearer(server_admin))
            assert answer.status_code not in (401, 403), (where, "server admin", answer.text)


def _refused(path: str) -> Any:
    """How a request without valid credentials is answered: 401, or for a UI page a redirect
    to its sign-in page."""
    if path.startswith("/ui"):
        return lambda answer: (
            answer.status_code == 303 and answer.headers["location"] == "/ui/login"
        )
    return lambda answer: answer.status_code == 401


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
