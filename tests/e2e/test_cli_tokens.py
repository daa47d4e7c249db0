"""``cauce tokens``, run as a real process: against a workspace that a server then serves, and
through a running server with authentication on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cauce.config import load_settings
from cauce.errors import Unauthorized
from cauce.lineage.audit import events
from cauce.server.auth import Authenticator, AuthSettings
from cauce.server.tokens import create_token
from cauce.workspace import Workspace
from clitools import assert_one_line_error, cauce, wait_until
from remote import start_server


def test_tokens_are_printed_once_listed_without_secrets_and_revoked(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    shown = cauce(home, "tokens", "create", "alice", "--role", "admin", "--workspace", "*")
    lines = shown.stdout.strip().splitlines()
    assert lines[0].startswith("token ct-") and "for alice (admin in *)" in lines[0]
    token = lines[1].strip()
    assert token.startswith("ct-") and len(token) == 46
    assert lines[2] == "Keep it now: it will not be shown again."
    created = json.loads(
        cauce(
            home, "tokens", "create", "ci-bot", "--role", "editor", "--expires", "30d", "--json"
        ).stdout
    )
    assert created["roles"] == {"default": "editor"} and created["state"] == "active"
    assert created["expires_at"] - created["created_at"] == 30 * 86_400_000
    cauce(home, "tokens", "grant", "ci-bot", "--role", "viewer", "--workspace", "reports")

    listed = cauce(home, "tokens", "list", "--json").stdout
    assert token not in listed and created["token"] not in listed
    assert {t["name"]: t["roles"] for t in json.loads(listed)} == {
        "alice": {"*": "admin"},
        "ci-bot": {"default": "editor", "reports": "viewer"},
    }
    assert "alice" in cauce(home, "tokens", "list").stdout

    # The server over that home takes the tokens the CLI made, and refuses them once revoked.
    ws = Workspace(load_settings(env={"CAUCE_HOME": str(home)}))
    try:
        auth = Authenticator(ws, AuthSettings(host="127.0.0.1"))
        assert auth.enabled
        bot = auth.authenticate({"Authorization": f"Bearer {created['token']}"}, "10.0.0.1")
        assert bot.role_in("reports") == "viewer" and bot.role_in("default") == "editor"
        revoked = cauce(home, "tokens", "revoke", "ci-bot")
        assert f"revoked token {created['prefix']}… of ci-bot" in revoked.stdout
        auth.forget()
        with pytest.raises(Unauthorized, match="revoked"):
            auth.authenticate({"Authorization": f"Bearer {created['token']}"}, "10.0.0.1")
        assert auth.authenticate({"Authorization": f"Bearer {token}"}, "10.0.0.1").is_server_admin
        actions = [(e.action, e.actor) for e in events(ws, entity_kind="token")]
        assert actions == [
            ("token.revoke", "cli-tester"),
            ("token.grant", "cli-tester"),
            ("token.create", "cli-tester"),
            ("token.create", "cli-tester"),
        ]
    finally:
        ws.close()


def test_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    bad_role = cauce(home, "tokens", "create", "x", "--role", "owner", check=False)
    assert_one_line_error(bad_role, "role must be one of viewer, editor, admin")
    bad_expiry = cauce(
        home, "tokens", "create", "x", "--role", "viewer", "--expires", "soon", check=False
    )
    assert_one_line_error(bad_expiry, "expires", "not a duration")
    leaked = "ct-" + "q" * 43
    unknown = cauce(home, "tokens", "revoke", leaked, check=False)
    assert_one_line_error(unknown, "no live token")
    assert leaked not in unknown.stderr


@pytest.mark.slow
def test_an_admin_manages_tokens_through_a_server_with_auth_on(tmp_path: Path) -> None:
    home = tmp_path / "server-home"
    (home / ".cauce").mkdir(parents=True)
    ws = Workspace(load_settings(env={"CAUCE_HOME": str(home), "CAUCE_USER": "ops"}))
    _, admin = create_token("root", "admin", workspace_name="*", home=ws)  # the first, locally
    ws.close()
    client = tmp_path / "client"  # holds nothing: the tokens are the server's
    for server in start_server(home, tmp_path / "server.log"):
        answer = httpx.post(
            f"{server.url}/api/v1/workspaces", json={"name": "churn"}, headers=_bearer(admin)
        )
        assert answer.status_code == 201

        def run(*args: str, token: str = admin, url: str = server.url, check: bool = True) -> Any:
            return cauce(client, *args, server=url, token=token, check=check)

        shown = run("tokens", "create", "ci-bot", "--role", "editor").stdout.splitlines()
        assert shown[0].startswith("token ct-") and "for ci-bot (editor in default)" in shown[0]
        assert shown[2] == "Keep it now: it will not be shown again."
        bot = shown[1].strip()
        made = httpx.post(
            f"{server.url}/api/v1/runs", json={"experiment": "e"}, headers=_bearer(bot)
        )
        assert made.status_code == 200 and made.json()["user_id"] == "ci-bot"

        # A workspace's URL reaches the tokens too: they live in the server's home.
        churn = f"{server.url}/w/churn"
        run("tokens", "grant", "ci-bot", "--role", "viewer", "--workspace", "churn", url=churn)
        listed = run("tokens", "list", "--json").stdout
        assert bot not in listed and admin not in listed
        assert {t["name"]: t["roles"] for t in json.loads(listed)} == {
            "root": {"*": "admin"},
            "ci-bot": {"churn": "viewer", "default": "editor"},
        }
        assert "ci-bot" in run("tokens", "list").stdout

        refused = run("tokens", "create", "x", "--role", "viewer", token=bot, check=False)
        assert_one_line_error(refused, "ci-bot is admin of no workspace")
        not_listed = run("tokens", "list", token=bot, check=False)
        assert_one_line_error(not_listed, "ci-bot", "managing tokens needs admin")
        bad = run("tokens", "create", "x", "--role", "owner", check=False)
        assert_one_line_error(bad, "role must be one of viewer, editor, admin")
        unknown = run("tokens", "revoke", "nobody", check=False)
        assert_one_line_error(unknown, "no live token")

        revoked = run("tokens", "revoke", "ci-bot").stdout
        assert "revoked token ct-" in revoked and "of ci-bot" in revoked
        # Refused within the server's cache time (a little more for the round trips).
        runs, headers = f"{server.url}/api/v1/runs", _bearer(bot)
        wait_until(
            lambda: httpx.get(runs, headers=headers).status_code == 401,  # noqa: B023
            timeout=AuthSettings().cache_s + 2,
            every=0.1,
        )
    log = (tmp_path / "server.log").read_text()
    assert admin not in log and bot not in log
    ws = Workspace(load_settings(env={"CAUCE_HOME": str(home)}))
    try:
        actions = [(e.action, e.actor) for e in events(ws, entity_kind="token")]
        assert actions == [
            ("token.revoke", "root"),
            ("token.grant", "root"),
            ("token.create", "root"),
            ("token.create", "ops"),
        ]
    finally:
        ws.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
