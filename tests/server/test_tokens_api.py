"""Token management through the server's API (``/api/v1/tokens``): a server admin manages every
token, a workspace admin those whose roles lie in workspaces it administers, anyone else is
refused; bad input names its field, every change is audited as the principal, and no secret
leaks into a log line, an error or an audit record."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from cauce.lineage.audit import events
from cauce.server.app import create_app
from cauce.server.tokens import create_token, hash_token, list_tokens
from cauce.workspace import Workspace

TOKENS = "/api/v1/tokens"


class Api:
    """The app over a workspace with tokens, and a request helper that sends one of them."""

    def __init__(self, client: TestClient, secrets: dict[str, str]):
        self.client = client
        self.secrets = secrets

    def __call__(
        self, who: str, method: str, path: str, body: Any = None, status: int = 200
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.secrets[who]}"}
        answer = self.client.request(method, path, json=body, headers=headers)
        assert answer.status_code == status, (who, method, path, answer.text)
        return answer.json()


@pytest.fixture
def api(local_workspace: Workspace) -> Iterator[Api]:
    """Tokens for a server admin (``root``), an admin of ``churn``, and ``default``'s editor."""
    secrets = {
        "root": create_token("root", "admin", workspace_name="*", home=local_workspace)[1],
        "churn-admin": create_token(
            "churn-admin", "admin", workspace_name="churn", home=local_workspace
        )[1],
        "eve": create_token("eve", "editor", home=local_workspace)[1],
    }
    with TestClient(create_app(local_workspace), base_url="http://t") as client:
        yield Api(client, secrets)


def _field(answer: Any, code: str, field: str) -> None:
    assert answer["error"]["code"] == code, answer
    assert answer["error"]["details"]["field"] == field, answer


def test_a_server_admin_creates_lists_grants_and_revokes_through_the_api(
    api: Api, local_workspace: Workspace
) -> None:
    created = api("root", "POST", TOKENS, {"name": "ci-bot", "role": "editor"}, 201)
    secret = created.pop("token")
    assert secret.startswith("ct-") and created["roles"] == {"default": "editor"}
    assert created["state"] == "active" and created["user"] == "root"
    api.secrets["ci-bot"] = secret
    run = api("ci-bot", "POST", "/api/v1/runs", {"experiment": "e"})
    assert run["user_id"] == "ci-bot"  # the new token works, with its role

    expiring = api("root", "POST", TOKENS, {"name": "tmp", "role": "viewer", "expires": 3600}, 201)
    assert expiring["expires_at"] - expiring["created_at"] == 3_600_000

    listed = api("root", "GET", TOKENS)["tokens"]
    text = json.dumps(listed)
    assert secret not in text and hash_token(secret) not in text and "token_sha256" not in text
    assert [t["name"] for t in listed] == ["churn-admin", "ci-bot", "eve", "root", "tmp"]

    granted = api("root", "POST", f"{TOKENS}/ci-bot/grants", {"role": "viewer", "workspace": "*"})
    assert [t["roles"] for t in granted["tokens"]] == [{"*": "viewer", "default": "editor"}]
    taken = api(
        "root", "POST", f"{TOKENS}/{created['id']}/grants", {"role": None, "workspace": "*"}
    )
    assert [t["roles"] for t in taken["tokens"]] == [{"default": "editor"}]

    revoked = api("root", "POST", f"{TOKENS}/ci-bot/revoke")["tokens"]
    assert [(t["id"], t["state"]) for t in revoked] == [(created["id"], "revoked")]

    # A leaked token is revoked from the body, never a URL.
    by_body = api("root", "POST", f"{TOKENS}/revoke", {"token": api.secrets["eve"]})["tokens"]
    assert [t["name"] for t in by_body] == ["eve"]

    actions = [(e.action, e.actor) for e in events(local_workspace, entity_kind="token")]
    assert actions[:6] == [
        ("token.revoke", "root"),
        ("token.revoke", "root"),
        ("token.grant", "root"),
        ("token.grant", "root"),
        ("token.create", "root"),
        ("token.create", "root"),
    ]


def test_mistakes_answer_in_the_house_shape_naming_the_field(api: Api) -> None:
    bad_bodies = [
        ({"role": "viewer"}, "name"),
        ({"name": "x"}, "role"),
        ({"name": "x", "role": "owner"}, "role"),
        ({"name": "x", "role": ["admin"]}, "role"),
        ({"name": "a/b", "role": "viewer"}, "name"),
        ({"name": "ct-x", "role": "viewer"}, "name"),
        ({"name": "x", "role": "viewer", "workspace": "a/b"}, "workspace"),
        ({"name": "x", "role": "viewer", "workspace": None}, "workspace"),
        ({"name": "x", "role": "viewer", "expires": "soon"}, "expires"),
        ({"name": "x", "role": "viewer", "expires": -5}, "expires"),
        ({"name": "x", "role": "viewer", "expires": 10**30}, "expires"),
        ({"name": "x", "role": "viewer", "expires": "9" * 400 + "d"}, "expires"),  # float: inf
        ({"name": "x", "role": "viewer", "expires": {}}, "expires"),
        ({"name": "x", "role": "viewer", "owner": "me"}, "owner"),
    ]
    for body, field in bad_bodies:
        _field(api("root", "POST", TOKENS, body, 422), "invalid-input", field)
    grants = f"{TOKENS}/eve/grants"
    _field(api("root", "POST", grants, {"role": "viewer"}, 422), "invalid-input", "workspace")
    _field(api("root", "POST", grants, {"role": 3, "workspace": "x"}, 422), "invalid-input", "role")
    _field(api("root", "POST", f"{TOKENS}/revoke", {"token": "eve"}, 422), "invalid-input", "token")
    _field(api("root", "POST", f"{TOKENS}/revoke", {}, 422), "invalid-input", "token")
    assert api("root", "POST", TOKENS, [1], 400)["error"]["code"] == "bad-request"

    assert api("root", "POST", f"{TOKENS}/nobody/revoke", None, 404)["error"]["code"] == (
        "not-found"
    )
    body = {"role": "viewer", "workspace": "x"}
    assert api("root", "POST", f"{TOKENS}/nobody/grants", body, 404)["error"]["code"] == (
        "not-found"
    )
    # Tokens live in the home: a named workspace's prefix does not reach them.
    assert api("root", "GET", f"/w/churn{TOKENS}", None, 404)["error"]["code"] == "not-found"
    # An editor, however sure of itself, is told no before its body is read.
    refused = api("eve", "POST", TOKENS, {"name": 5}, 403)["error"]
    assert refused["code"] == "forbidden" and "admin of no workspace" in refused["message"]


def test_a_workspace_admin_manages_only_tokens_of_the_workspaces_it_administers(
    api: Api, local_workspace: Workspace
) -> None:
    made = api("churn-admin", "POST", TOKENS, {"name": "churn-bot", "role": "editor",
                                               "workspace": "churn"}, 201)  # fmt: skip
    assert made["user"] == "churn-admin"
    for workspace in ("default", "*", "reports"):
        body = {"name": "x", "role": "viewer", "workspace": workspace}
        assert api("churn-admin", "POST", TOKENS, body, 403)["error"]["code"] == "forbidden"
    # A name another's token carries is not handed out again: it would act (and be audited)
    # as that principal. A server admin may (a new token before the old one is revoked).
    taken = {"name": "root", "role": "viewer", "workspace": "churn"}
    _field(api("churn-admin", "POST", TOKENS, taken, 409), "already-exists", "name")
    again = {"name": "churn-bot", "role": "viewer", "workspace": "churn"}
    api("churn-admin", "POST", TOKENS, again, 201)  # its own bot's name: a rotation
    api("root", "POST", TOKENS, {"name": "eve", "role": "viewer"}, 201)

    names = {t["name"] for t in api("churn-admin", "GET", TOKENS)["tokens"]}
    assert names == {"churn-admin", "churn-bot"}

    api("root", "POST", f"{TOKENS}/churn-bot/grants", {"role": "viewer", "workspace": "reports"})
    for path, body in [
        (f"{TOKENS}/churn-bot/revoke", None),  # holds a role in reports now
        (f"{TOKENS}/churn-bot/grants", {"role": "admin", "workspace": "churn"}),
        (f"{TOKENS}/eve/grants", {"role": "viewer", "workspace": "churn"}),  # holds default
        (f"{TOKENS}/eve/revoke", None),
        (f"{TOKENS}/revoke", {"token": api.secrets["root"]}),
    ]:
        assert api("churn-admin", "POST", path, body, 403)["error"]["code"] == "forbidden"
    live = [t for t in list_tokens(home=local_workspace) if t.state() == "active"]
    assert len(live) == 6  # nothing was revoked by the refused requests

    api("root", "POST", f"{TOKENS}/churn-bot/grants", {"role": None, "workspace": "reports"})
    revoked = api("churn-admin", "POST", f"{TOKENS}/churn-bot/revoke")["tokens"]
    assert [t["state"] for t in revoked] == ["revoked", "revoked"]


def test_no_secret_appears_in_logs_errors_or_audit_through_the_api(
    api: Api, local_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = api("root", "POST", TOKENS, {"name": "bot", "role": "viewer"}, 201)["token"]
    near_miss = secret[:-4] + "AAAA"
    answers = [
        api("root", "POST", f"{TOKENS}/{secret}/revoke", None, 422),
        api("root", "POST", f"{TOKENS}/{near_miss}/grants", {"role": "editor"}, 422),
        api("root", "POST", f"{TOKENS}/revoke", {"token": near_miss}, 404),
        api("churn-admin", "POST", f"{TOKENS}/revoke", {"token": secret}, 403),
        api("root", "POST", f"{TOKENS}/revoke", {"token": secret}),
        api("root", "POST", f"{TOKENS}/revoke", {"token": secret}),  # once more: no change
        api("root", "POST", TOKENS, {"name": secret, "role": "viewer"}, 422),
        api("root", "GET", TOKENS),
    ]
    with local_workspace.store.read() as conn:
        audit_rows = json.dumps(
            [list(r) for r in conn.exec_driver_sql("SELECT * FROM audit_events")]
        )
    # The test's own HTTP client logs the URLs it requests (clients and proxies do): that is
    # why the server refuses a secret in one. What the server logs is what counts here.
    server_log = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    texts = [*server_log, audit_rows, *(json.dumps(a) for a in answers)]
    for leak in (secret, near_miss, secret[3:], hash_token(secret)):
        assert not [t for t in texts if leak in t]
    assert "token.revoke" in audit_rows
