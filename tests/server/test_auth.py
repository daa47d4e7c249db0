"""The team server's authentication: API tokens, when auth is on, roles, failed logins limited,
and no secret anywhere it could leak, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cauce.errors import (
    AlreadyExists,
    CauceError,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from cauce.lineage.audit import events
from cauce.server.auth import (
    ANONYMOUS,
    Authenticator,
    AuthSettings,
    FailureLimiter,
    Principal,
    is_loopback,
    may_manage,
    require,
    require_manage,
)
from cauce.server.tokens import (
    create_token,
    grant_role,
    hash_token,
    list_tokens,
    revoke_token,
)
from cauce.workspace import Workspace
from optional import need


class Clock:
    """Wall time that a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {encoded}"}


def server(
    ws: Workspace, host: str = "0.0.0.0", clock: Callable[[], float] | None = None, **settings: Any
) -> Authenticator:
    return Authenticator(ws, AuthSettings(host=host, **settings), clock=clock or time.time)


# -- tokens ------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_as_its_sha256_and_authenticates_its_principal(
    any_workspace: Workspace,
) -> None:
    info, token = create_token("ci-bot", "editor", workspace_name="churn", home=any_workspace)
    assert token.startswith("ct-") and len(token) == 3 + 43
    assert info.prefix == token[:9] and info.roles == {"churn": "editor"}
    assert info.state() == "active" and info.user == "tester"

    with any_workspace.store.read() as conn:
        stored = json.dumps([list(r) for r in conn.exec_driver_sql("SELECT * FROM api_tokens")])
    assert token not in stored and hash_token(token) in stored

    principal = server(any_workspace).authenticate(bearer(token), "10.0.0.7")
    assert principal == Principal(
        "ci-bot", via="token", roles={"churn": "editor"}, token_id=info.id
    )
    assert principal.role_in("churn") == "editor" and principal.role_in("other") is None

    [listed] = list_tokens(home=any_workspace)
    assert listed == info
    assert "token_sha256" not in listed.to_dict() and token not in json.dumps(listed.to_dict())


def test_tokens_hold_roles_in_several_workspaces_and_grants_are_audited(
    any_workspace: Workspace,
) -> None:
    _, token = create_token("alice", "viewer", workspace_name="churn", home=any_workspace)
    grant_role("alice", "admin", workspace_name="reports", home=any_workspace, actor="root")
    [changed] = grant_role("alice", "editor", workspace_name="churn", home=any_workspace)
    assert changed.roles == {"churn": "editor", "reports": "admin"}
    principal = server(any_workspace).authenticate(bearer(token), "10.0.0.7")
    assert principal.roles == {"churn": "editor", "reports": "admin"}
    grant_role("alice", None, workspace_name="reports", home=any_workspace)
    assert list_tokens(home=any_workspace)[0].roles == {"churn": "editor"}

    grants = events(any_workspace, action="token.grant")
    assert [(e.actor, e.after) for e in reversed(grants)] == [
        ("root", {"roles": {"churn": "viewer", "reports": "admin"}}),
        ("tester", {"roles": {"churn": "editor", "reports": "admin"}}),
        ("tester", {"roles": {"churn": "editor"}}),
    ]
    with pytest.raises(InvalidInput, match="role must be one of viewer, editor, admin"):
        grant_role("alice", "owner", workspace_name="churn", home=any_workspace)
    with pytest.raises(NotFound, match="no live token"):
        grant_role("bob", "viewer", workspace_name="churn", home=any_workspace)


def test_a_revoked_token_is_refused_within_the_cache_time(any_workspace: Workspace) -> None:
    clock = Clock()
    auth = server(any_workspace, clock=clock, cache_s=5)
    first, old = create_token("ci-bot", "editor", home=any_workspace)
    second, new = create_token("ci-bot", "editor", home=any_workspace)  # a rotation
    assert auth.authenticate(bearer(old), "10.0.0.7").name == "ci-bot"

    [revoked] = revoke_token(first.id, home=any_workspace)  # by id: that token alone
    assert revoked.id == first.id and revoked.state() == "revoked"
    clock.advance(4)  # still remembered: the documented bound
    assert auth.authenticate(bearer(old), "10.0.0.7").name == "ci-bot"
    clock.advance(1.5)
    with pytest.raises(Unauthorized, match="was revoked"):
        auth.authenticate(bearer(old), "10.0.0.7")
    assert auth.authenticate(bearer(new), "10.0.0.7").token_id == second.id

    # By name: every live token of that principal; again, nothing changes.
    assert [t.id for t in revoke_token("ci-bot", home=any_workspace)] == [second.id]
    assert [t.id for t in revoke_token(second.id, home=any_workspace)] == [second.id]
    with pytest.raises(NotFound, match="no live token"):
        revoke_token("ci-bot", home=any_workspace)
    with pytest.raises(Unauthorized, match="was revoked"):
        server(any_workspace).authenticate(bearer(new), "10.0.0.8")
    assert [e.entity_id for e in events(any_workspace, action="token.revoke")] == [
        second.id,
        first.id,
    ]


def test_an_expired_token_is_refused_at_once_even_when_remembered(
    any_workspace: Workspace,
) -> None:
    clock = Clock()
    auth = server(any_workspace, clock=clock, cache_s=60)
    info, token = create_token("short", "viewer", expires="2s", home=any_workspace)
    assert info.expires_at is not None and info.expires_at - info.created_at == 2000
    assert auth.authenticate(bearer(token), "10.0.0.7").name == "short"
    clock.advance(2.5)
    with pytest.raises(Unauthorized, match="expired"):
        auth.authenticate(bearer(token), "10.0.0.7")
    assert info.state(at_ms=info.expires_at) == "expired"

    for bad in ("0s", "soon", -5):
        with pytest.raises(InvalidInput, match="expires"):
            create_token("never", "viewer", expires=bad, home=any_workspace)
    with pytest.raises(InvalidInput, match="role must be one of"):
        create_token("x", "root", home=any_workspace)
    with pytest.raises(InvalidInput, match="workspace name"):
        create_token("x", "viewer", workspace_name="a/b", home=any_workspace)


def test_create_and_revoke_are_audited_without_the_secret(any_workspace: Workspace) -> None:
    info, token = create_token("bot", "admin", workspace_name="*", home=any_workspace, actor="root")
    revoke_token("bot", home=any_workspace)
    [revoked, created] = events(any_workspace, entity_kind="token")
    assert (created.action, created.actor, created.entity_id) == ("token.create", "root", info.id)
    assert created.after == {
        "id": info.id,
        "name": "bot",
        "prefix": info.prefix,
        "roles": {"*": "admin"},
        "expires_at": None,
        "user": "root",
    }
    assert revoked.action == "token.revoke" and revoked.before == {"revoked_at": None}
    with any_workspace.store.read() as conn:
        audit_rows = json.dumps(
            [list(r) for r in conn.exec_driver_sql("SELECT * FROM audit_events")]
        )
    assert token not in audit_rows and hash_token(token) not in audit_rows


# -- when authentication is on ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("cauce.internal", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auth_is_off_only_on_loopback_with_no_token_and_stays_on_once_one_exists(
    any_workspace: Workspace,
) -> None:
    clock = Clock()
    auth = server(any_workspace, host="127.0.0.1", clock=clock, cache_s=5)
    assert not auth.enabled and "authentication off" in auth.describe()
    assert auth.authenticate({}, "127.0.0.1") is ANONYMOUS
    assert ANONYMOUS.role_in("anything") == "admin" and ANONYMOUS.is_server_admin

    _, token = create_token("alice", "admin", workspace_name="*", home=any_workspace)
    clock.advance(5.5)  # another process's token is seen within the cache time
    assert auth.enabled and auth.describe() == "authentication on: API tokens"
    with pytest.raises(Unauthorized, match="authentication required"):
        auth.authenticate({}, "127.0.0.1")
    assert auth.authenticate(bearer(token), "127.0.0.1").name == "alice"

    revoke_token("alice", home=any_workspace)  # revoking the last token opens nothing
    fresh = server(any_workspace, host="127.0.0.1")
    assert fresh.enabled
    with pytest.raises(Unauthorized):
        fresh.authenticate(bearer(token), "127.0.0.1")


def test_a_server_beyond_loopback_with_no_token_refuses_everything_and_says_how_to_fix_it(
    any_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    auth = server(any_workspace, host="0.0.0.0")
    assert auth.enabled and "cauce tokens create" in auth.describe()
    caplog.set_level(logging.WARNING, logger="cauce.server.auth")
    for _ in range(3):
        with pytest.raises(Unauthorized) as refused:
            auth.authenticate({}, "192.0.2.1")
        assert refused.value.http_status == 401
        assert refused.value.hint is not None and "cauce tokens create" in refused.value.hint
    hints = [r for r in caplog.records if "no API token exists" in r.getMessage()]
    assert len(hints) == 1  # once a minute, not once a request
    with pytest.raises(Unauthorized, match="not recognised"):
        auth.authenticate(bearer("ct-" + "x" * 43), "192.0.2.1")


def test_basic_auth_with_the_token_as_password_works_as_the_mlflow_client_sends_it(
    any_workspace: Workspace,
) -> None:
    _, token = create_token("mlflow-user", "editor", home=any_workspace)
    auth = server(any_workspace)
    assert auth.authenticate(basic("anyone", token), "10.0.0.7").name == "mlflow-user"
    assert auth.authenticate(basic(token, ""), "10.0.0.7").name == "mlflow-user"
    for headers in (
        basic("anyone", "wrong"),
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest abc"},
        {"Authorization": "Bearer"},
    ):
        with pytest.raises(Unauthorized):
            auth.authenticate(headers, "10.0.0.8")


@contextlib.contextmanager
def authenticating_server(auth: Authenticator) -> Iterator[str]:
    """A loopback HTTP server that answers each GET with the principal its headers prove (200)
    or the error (its status); its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                principal = auth.authenticate(dict(self.headers.items()), self.client_address[0])
                status, body = 200, {"principal": principal.name}
            except CauceError as exc:
                status, body = exc.http_status, exc.to_dict()
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_the_real_mlflow_client_s_credentials_are_accepted(workspace: Workspace) -> None:
    need("mlflow", extra="dev")
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request

    _, token = create_token("mlflow-user", "viewer", home=workspace)
    auth = server(workspace)
    with authenticating_server(auth) as url:
        for creds in (
            MlflowHostCreds(url, token=token),  # MLFLOW_TRACKING_TOKEN
            MlflowHostCreds(url, username="me", password=token),  # MLFLOW_TRACKING_PASSWORD
        ):
            answer = http_request(creds, "/api/2.0/mlflow/experiments/search", "GET")
            assert answer.status_code == 200 and answer.json() == {"principal": "mlflow-user"}
        wrong = MlflowHostCreds(url, token=token[:-1] + ("A" if token[-1] != "A" else "B"))
        refused = http_request(wrong, "/api/2.0/mlflow/experiments/search", "GET", max_retries=0)
        assert refused.status_code == 401


# -- roles --------------------------------------------------------------------------------------

# (role held in "churn", role needed) pairs that are allowed; every other pair is Forbidden.
ALLOWED = {
    ("viewer", "viewer"),
    ("editor", "viewer"),
    ("editor", "editor"),
    ("admin", "viewer"),
    ("admin", "editor"),
    ("admin", "admin"),
}


@pytest.mark.parametrize("held", [None, "viewer", "editor", "admin"])
@pytest.mark.parametrize("needed", ["viewer", "editor", "admin"])
def test_require_allows_a_role_and_everything_below_it(held: str | None, needed: str) -> None:
    principal = Principal("p", via="token", roles={"churn": held} if held else {})
    if (held, needed) in ALLOWED:
        require(principal, "churn", needed)
    else:
        with pytest.raises(Forbidden) as refused:
            require(principal, "churn", needed)
        assert refused.value.http_status == 403
        assert f"this needs {needed}" in refused.value.message
    with pytest.raises(Forbidden):  # a role in one workspace is none in another
        require(principal, "reports", needed)


def test_a_role_in_every_workspace_counts_everywhere_and_the_higher_one_wins() -> None:
    principal = Principal("p", via="oidc", roles={"*": "viewer", "churn": "admin"})
    assert principal.role_in("churn") == "admin" and principal.role_in("reports") == "viewer"
    assert principal.role_in("*") == "viewer" and not principal.is_server_admin
    require(principal, "reports", "viewer")
    with pytest.raises(Forbidden, match="a viewer in workspace 'reports'; this needs editor"):
        require(principal, "reports", "editor")
    admin = Principal("root", via="token", roles={"*": "admin", "churn": "viewer"})
    assert admin.is_server_admin and admin.role_in("churn") == "admin"
    require(admin, "*", "admin")


def test_managing_a_token_needs_admin_of_every_workspace_it_holds_a_role_in() -> None:
    workspace_admin = Principal("w", via="token", roles={"churn": "admin", "reports": "editor"})
    server_admin = Principal("s", via="token", roles={"*": "admin"})
    editor = Principal("e", via="token", roles={"churn": "editor"})
    assert may_manage(workspace_admin, {"churn": "editor"})
    assert not may_manage(workspace_admin, {"churn": "viewer", "reports": "viewer"})
    assert not may_manage(workspace_admin, {"*": "viewer"})
    assert not may_manage(workspace_admin, {})
    assert not may_manage(editor, {"churn": "viewer"})
    for roles in ({"churn": "admin"}, {"*": "admin"}, {}):
        assert may_manage(server_admin, roles)
    with pytest.raises(Forbidden, match="may not manage tokens with roles in \\*"):
        require_manage(workspace_admin, {"*": "viewer"})


def test_a_principal_manages_tokens_all_or_nothing(any_workspace: Workspace) -> None:
    churn_admin = Principal("w", via="token", roles={"churn": "admin"})
    editor = Principal("e", via="token", roles={"*": "editor"})
    create_token("bot", "editor", workspace_name="churn", home=any_workspace, principal=churn_admin)
    create_token("bot", "viewer", workspace_name="reports", home=any_workspace)
    with pytest.raises(Forbidden, match="reports"):  # one of the two is beyond churn
        revoke_token("bot", home=any_workspace, principal=churn_admin)
    with pytest.raises(Forbidden, match="reports"):
        grant_role(
            "bot", "admin", workspace_name="churn", home=any_workspace, principal=churn_admin
        )
    assert [t.state() for t in list_tokens(home=any_workspace)] == ["active", "active"]
    assert [t.roles for t in list_tokens(home=any_workspace)] == [
        {"churn": "editor"},
        {"reports": "viewer"},
    ]
    assert [t.roles for t in list_tokens(home=any_workspace, principal=churn_admin)] == [
        {"churn": "editor"}
    ]
    with pytest.raises(AlreadyExists):  # a name another's token carries
        create_token(
            "bot", "viewer", workspace_name="churn", home=any_workspace, principal=churn_admin
        )
    for attempt in (
        lambda: list_tokens(home=any_workspace, principal=editor),
        lambda: create_token("x", "viewer", home=any_workspace, principal=editor),
        lambda: revoke_token("bot", home=any_workspace, principal=editor),
    ):
        with pytest.raises(Forbidden, match="admin of no workspace"):
            attempt()


# -- failed logins ------------------------------------------------------------------------------


def test_ten_failures_block_a_client_even_with_the_right_token_until_the_window_passes(
    any_workspace: Workspace,
) -> None:
    clock = Clock()
    auth = server(any_workspace, clock=clock)
    _, token = create_token("alice", "editor", home=any_workspace)
    for _ in range(10):
        with pytest.raises(Unauthorized):
            auth.authenticate(bearer("ct-guess" + "x" * 38), "198.51.100.9")
        clock.advance(1)
    with pytest.raises(RateLimited) as limited:
        auth.authenticate(bearer(token), "198.51.100.9")
    assert limited.value.http_status == 429
    assert 49 < limited.value.retry_after <= 51  # the first failure leaves the window in 50 s
    assert auth.authenticate(bearer(token), "198.51.100.10").name == "alice"  # another client
    assert auth.authenticate({"Authorization": "Bearer " + token}, "::ffff:198.51.100.10")

    clock.advance(limited.value.retry_after + 0.01)
    assert auth.authenticate(bearer(token), "198.51.100.9").name == "alice"


def test_requests_without_credentials_are_not_failed_logins(any_workspace: Workspace) -> None:
    auth = server(any_workspace)
    _, token = create_token("alice", "editor", home=any_workspace)
    for _ in range(30):  # a health check that sends nothing
        with pytest.raises(Unauthorized):
            auth.authenticate({}, "203.0.113.5")
    assert auth.authenticate(bearer(token), "203.0.113.5").name == "alice"


def test_failures_under_one_user_name_block_it_from_every_address(
    any_workspace: Workspace,
) -> None:
    auth = server(any_workspace)
    _, token = create_token("alice", "editor", home=any_workspace)
    for n in range(10):
        with pytest.raises(Unauthorized):
            auth.authenticate(basic("alice", f"guess-{n}"), f"203.0.113.{n}")
    with pytest.raises(RateLimited):
        auth.authenticate(basic("alice", token), "203.0.113.200")
    assert auth.authenticate(basic("bob", token), "203.0.113.200").name == "alice"


def test_an_ipv6_client_is_counted_by_its_slash_64(any_workspace: Workspace) -> None:
    auth = server(any_workspace)
    _, token = create_token("alice", "editor", home=any_workspace)
    for n in range(10):
        with pytest.raises(Unauthorized):
            auth.authenticate(bearer(f"ct-{n}"), f"2001:db8:0:1::{n + 1:x}")
    with pytest.raises(RateLimited):
        auth.authenticate(bearer(token), "2001:db8:0:1:ffff::1")
    assert auth.authenticate(bearer(token), "2001:db8:0:2::1").name == "alice"


def test_the_limiter_remembers_a_bounded_number_of_clients() -> None:
    now = [0.0]
    limiter = FailureLimiter(max_failures=3, window_s=60, max_tracked=100, clock=lambda: now[0])
    for n in range(5000):
        limiter.fail([f"ip:{n}"])
    assert len(limiter) == 100
    for _ in range(3):
        limiter.fail(["ip:attacker"])
    assert limiter.retry_after(["ip:attacker"]) == 60
    assert limiter.retry_after(["ip:0"]) is None  # forgotten: the oldest went first
    now[0] = 59.5
    assert limiter.retry_after(["ip:other", "ip:attacker"]) == pytest.approx(0.5)
    now[0] = 60.0
    assert limiter.retry_after(["ip:attacker"]) is None


# -- secrets never leak ---------------------------------------------------------------------------


def test_no_secret_appears_in_logs_errors_or_audit_rows(
    any_workspace: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    auth = server(any_workspace, clock=clock, cache_s=0)
    info, token = create_token("alice", "editor", expires="1h", home=any_workspace)
    _, other = create_token("bob", "viewer", home=any_workspace)
    near_miss = token[:-4] + "AAAA"
    raised: list[CauceError] = []

    def attempt(headers: dict[str, str], ip: str = "192.0.2.1") -> None:
        try:
            auth.authenticate(headers, ip)
        except CauceError as exc:
            raised.append(exc)

    attempt(bearer(token))
    attempt(bearer(near_miss))
    attempt(basic("alice", near_miss))
    attempt(basic(near_miss, ""))
    attempt({"Authorization": "Token " + token})
    attempt({"Authorization": "Bearer " + token + ".x.y"})
    revoke_token("bob", home=any_workspace)
    attempt(bearer(other))
    clock.advance(3601)
    attempt(bearer(token))  # expired
    for _ in range(10):
        attempt(bearer(near_miss), "192.0.2.99")
    attempt(bearer(token), "192.0.2.99")  # rate-limited
    with pytest.raises(NotFound) as not_found:
        revoke_token(near_miss, home=any_workspace)
    raised.append(not_found.value)

    assert len(raised) == 19 and isinstance(raised[-2], RateLimited)
    assert any("expired" in e.message for e in raised)
    assert any("revoked" in e.message for e in raised)
    texts = [caplog.text]
    for exc in raised:
        texts += [str(exc), repr(exc), json.dumps(exc.to_dict()), str(exc.hint), repr(exc.args)]
    with any_workspace.store.read() as conn:
        texts.append(
            json.dumps([list(r) for r in conn.exec_driver_sql("SELECT * FROM audit_events")])
        )
    texts.append(repr(list_tokens(home=any_workspace)))
    for secret in (
        token,
        other,
        near_miss,
        near_miss[3:],
        base64.b64encode(near_miss.encode()).decode(),
    ):
        leaked = [t for t in texts if secret in t]
        assert not leaked, leaked
    assert "192.0.2.1" in caplog.text and info.prefix in caplog.text  # what is logged instead


def test_a_leaked_token_pasted_in_place_of_a_name_is_revoked_and_never_echoed(
    workspace: Workspace,
) -> None:
    info, token = create_token("alice", "editor", home=workspace)
    [revoked] = revoke_token(token, home=workspace)
    assert revoked.id == info.id
    assert revoke_token(token, home=workspace)[0].revoked_at == revoked.revoked_at
    with pytest.raises(NotFound) as unknown:
        revoke_token("ct-" + "z" * 43, home=workspace)
    assert "z" * 43 not in str(unknown.value)
    with pytest.raises(InvalidInput, match="may not start with 'ct-'"):
        create_token("ct-looks-like-a-token", "viewer", home=workspace)
