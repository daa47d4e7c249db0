"""``cauce tokens``, run as a real process against a workspace that a server then serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cauce.config import load_settings
from cauce.errors import Unauthorized
from cauce.lineage.audit import events
from cauce.server.auth import Authenticator, AuthSettings
from cauce.workspace import Workspace
from clitools import assert_one_line_error, cauce


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
