"""Connections: encrypted keys, the openai client's retries, usage and cost, clear errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.clitools import assert_one_line_error
from tests.clitools import cauce as run_cli
from tests.genai.upstream import Upstream

import cauce
from cauce.errors import InvalidInput, LLMError, NotFound
from cauce.genai import connections, secrets
from cauce.lineage import audit
from cauce.store.schema import connections as connections_table
from cauce.store.schema import metadata
from cauce.workspace import Workspace

SECRET = "sk-test-0123456789abcdefSECRET"
QUESTION = [{"role": "user", "content": "what is a canary rollout"}]


def spec(url: str, **fields: object) -> dict[str, object]:
    return {
        "kind": "Connection",
        "name": "llm",
        "base_url": url,
        "api_key": {"env": "LLM_KEY"},
        "models": {"chat": "echo", "embeddings": "echo-embed"},
        "timeout": "5s",
        "max_retries": 2,
        **fields,
    }


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_KEY", SECRET)


def test_the_key_is_encrypted_at_rest_and_the_spec_says_only_where_it_came_from(
    any_workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    [applied] = cauce.apply(spec(upstream.url))
    assert applied.outcome == "created"
    found = connections.get("llm")
    assert found.spec["api_key"] == {"env": "LLM_KEY"} and found.has_secret
    with any_workspace.store.read() as conn:
        token = conn.execute(select(connections_table.c.secret)).scalar_one()
    assert SECRET not in token
    assert secrets.decrypt(any_workspace, token, "llm") == SECRET
    connections.client("llm").chat(QUESTION)
    assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"


def test_reapplying_is_unchanged_until_the_key_or_a_field_changes(
    workspace: Workspace, upstream: Upstream, monkeypatch: pytest.MonkeyPatch, keyed: None
) -> None:
    cauce.apply(spec(upstream.url))
    [same] = cauce.apply(spec(upstream.url))
    assert same.outcome == "unchanged"
    monkeypatch.setenv("LLM_KEY", SECRET + "-rotated")
    [rotated] = cauce.apply(spec(upstream.url, max_retries=1))
    assert rotated.outcome == "updated"
    assert [(c.field, c.old, c.new) for c in rotated.changes] == [
        ("max_retries", 2, 1),
        ("api_key", "(a key)", "(another key)"),
    ]
    connections.client("llm").chat(QUESTION)
    assert upstream.requests[-1]["headers"]["authorization"].endswith("-rotated")


def test_a_key_source_that_cannot_be_read_applies_nothing(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLM_KEY", raising=False)
    good = {"kind": "Prompt", "name": "p", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(InvalidInput, match=r"api_key\.env names LLM_KEY, which is not set"):
        cauce.apply([good, spec("http://127.0.0.1:9/v1")])
    with pytest.raises(InvalidInput, match=r"cannot read api_key\.file"):
        cauce.apply(spec("http://127.0.0.1:9/v1", api_key={"file": str(tmp_path / "none")}))
    with pytest.raises(InvalidInput, match="Authorization holds a secret"):
        cauce.apply(spec("http://127.0.0.1:9/v1", api_key=None, headers={"Authorization": "x"}))
    with pytest.raises(InvalidInput, match="needs base_url and api_version"):
        cauce.apply(spec("http://127.0.0.1:9/v1", api_key=None, provider="azure_openai"))
    assert connections.list_connections() == []
    assert cauce.prompts.list_prompts() == []


def test_the_key_file_is_private_and_keys_rotate(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    token = secrets.encrypt(workspace, SECRET)
    path = secrets.key_file(workspace)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = path.read_text().strip()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("CAUCE_SECRET_KEY", new)
    with pytest.raises(InvalidInput, match="encrypted with another key"):
        secrets.decrypt(workspace, token, "connection 'llm'")
    monkeypatch.setenv("CAUCE_SECRET_KEY", f"{new},{old}")
    assert secrets.decrypt(workspace, token, "x") == SECRET
    rotated = secrets.encrypt(workspace, SECRET)
    monkeypatch.setenv("CAUCE_SECRET_KEY", new)
    assert secrets.decrypt(workspace, rotated, "x") == SECRET
    monkeypatch.setenv("CAUCE_SECRET_KEY", "not a key")
    with pytest.raises(InvalidInput, match="CAUCE_SECRET_KEY does not hold a Fernet key"):
        secrets.encrypt(workspace, SECRET)
    monkeypatch.delenv("CAUCE_SECRET_KEY")
    os.chmod(path, 0o644)
    with pytest.raises(InvalidInput, match="can be read by other users"):
        secrets.encrypt(workspace, SECRET)


def test_chat_usage_and_cost_come_from_the_answer_streamed_or_not(
    workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    prices = {"echo": {"input": 2.0, "output": 8.0}}
    cauce.apply(spec(upstream.url, prices=prices))
    llm = connections.client("llm")
    whole = llm.chat(QUESTION, temperature=0)
    assert whole.text == "echo: what is a canary rollout"
    assert (whole.finish_reason, whole.model) == ("stop", "echo")
    assert whole.usage is not None
    assert (whole.usage.input_tokens, whole.usage.output_tokens, whole.usage.total_tokens) == (
        5,
        6,
        11,
    )
    assert whole.cost == pytest.approx((5 * 2.0 + 6 * 8.0) / 1e6)
    stream = llm.stream(QUESTION, temperature=0)
    deltas = list(stream)
    assert len(deltas) == 6 and "".join(deltas) == whole.text
    assert stream.result is not None
    assert stream.result.usage == whole.usage and stream.result.cost == whole.cost
    assert stream.result.first_token_ms is not None
    assert upstream.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    upstream.usage_on_last_choice = True
    again = llm.stream(QUESTION)
    assert again.text() == whole.text and again.result is not None
    assert again.result.usage == whole.usage
    cut = llm.chat(QUESTION, max_tokens=2)
    assert (cut.text, cut.finish_reason, cut.usage.output_tokens) == ("echo: what", "length", 2)


def test_embeddings_come_back_in_the_order_of_the_texts(
    workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    cauce.apply(spec(upstream.url))
    result = connections.client("llm").embed(["a", "bb cc", "ddd"])
    assert result.vectors == [[1.0, 1.0], [5.0, 2.0], [3.0, 1.0]]
    assert result.usage is not None and result.usage.input_tokens == 4


def test_429_is_retried_after_the_servers_retry_after(
    workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    cauce.apply(spec(upstream.url))
    llm = connections.client("llm")
    upstream.script = [(429, {"Retry-After": "1"}), (503, {})]
    assert llm.chat(QUESTION).text.startswith("echo:")
    assert len(upstream.requests) == 3
    assert upstream.times[1] - upstream.times[0] >= 0.95  # waited as Retry-After said
    upstream.script = ["drop"]
    assert llm.stream(QUESTION).text().startswith("echo:")
    assert len(upstream.requests) == 5


def test_what_still_fails_after_the_retries_is_one_clear_error(
    workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    cauce.apply(spec(upstream.url, timeout="700ms", max_retries=1))
    llm = connections.client("llm")
    upstream.script = [(429, {"Retry-After": "0"})] * 2
    with pytest.raises(LLMError, match=r"failed with HTTP 429 after 1 retries: scripted 429"):
        llm.chat(QUESTION)
    upstream.script = [(500, {})] * 2
    with pytest.raises(LLMError, match="HTTP 500 after 1 retries"):
        llm.chat(QUESTION)
    upstream.script = ["malformed"]
    with pytest.raises(LLMError, match="not the OpenAI API's shape"):
        llm.chat(QUESTION)
    upstream.script = ["slow", "slow"]
    upstream.delay = 1.5
    with pytest.raises(LLMError, match=r"timed out \(0.7 s per try\) after 1 retries"):
        llm.chat(QUESTION)
    upstream.script = [(400, {})]
    with pytest.raises(InvalidInput, match="refused the request \\(HTTP 400\\)"):
        llm.chat(QUESTION)
    upstream.script = [(401, {})]
    with pytest.raises(LLMError, match="refused the connection's credentials") as caught:
        llm.chat(QUESTION)
    assert SECRET not in str(caught.value)


def test_a_server_that_is_down_is_named(workspace: Workspace, keyed: None) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cauce.apply(spec(f"http://127.0.0.1:{port}/v1", max_retries=0))
    with pytest.raises(LLMError, match=f"127.0.0.1:{port}.*could not reach the server"):
        connections.client("llm").chat(QUESTION)
    with pytest.raises(NotFound, match="no connection named 'nope'"):
        connections.client("nope")


def test_the_key_is_never_stored_shown_logged_audited_or_exported(
    any_workspace: Workspace, upstream: Upstream, keyed: None, tmp_path: Path
) -> None:
    cauce.apply(spec(upstream.url))
    cauce.apply(spec(upstream.url, name="inline", api_key=SECRET))
    planned = cauce.apply(spec(upstream.url, name="inline", api_key=SECRET + "2"), dry_run=True)
    seen = [json.dumps([p.to_dict() for p in planned])]
    upstream.script = [(401, {})]
    with pytest.raises(LLMError) as caught:
        connections.client("llm").chat(QUESTION)
    seen.append(str(caught.value))
    assert connections.get("inline").spec["api_key"] == "<encrypted>"
    seen += [json.dumps(c.to_dict()) for c in connections.list_connections()]
    seen += [json.dumps(e.to_dict()) for e in audit.events(any_workspace, limit=1000)]
    with any_workspace.store.read() as conn:
        for table in metadata.sorted_tables:
            seen += [repr(tuple(row)) for row in conn.execute(select(table))]
    home = Path(any_workspace.settings.root)
    for args in (
        ("connections", "list", "--json"),
        ("connections", "show", "inline"),
        ("connections", "test", "llm", "--json"),
        ("audit", "-n", "100"),
    ):
        result = run_cli(home, *args, check=False)
        seen += [result.stdout, result.stderr]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert files, "the workspace holds files"
    assert all(SECRET.encode() not in p.read_bytes() for p in files)
    assert not [text for text in seen if SECRET in text]


def test_cli_lists_shows_and_tests(workspace: Workspace, upstream: Upstream, keyed: None) -> None:
    cauce.apply(spec(upstream.url))
    home = Path(workspace.settings.root)
    listed = run_cli(home, "connections", "list").stdout
    assert "llm" in listed and "stored, encrypted" in listed
    tested = json.loads(run_cli(home, "connections", "test", "llm", "--json").stdout)
    assert tested["models"] == ["echo"]
    assert tested["chat"]["usage"]["output_tokens"] == 1
    run_cli(home, "connections", "delete", "llm")
    assert_one_line_error(run_cli(home, "connections", "show", "llm", check=False), "llm")


def test_prices_tagged_on_the_registered_model_cost_a_call_the_connection_does_not_price(
    workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    cauce.apply(spec(upstream.url))
    cauce.models.create_model("echo", tags={"price_input": "3", "price_output": "6"})
    answer = connections.client("llm").chat(QUESTION)
    assert answer.usage is not None
    assert answer.cost == pytest.approx((5 * 3 + 6 * 6) / 1e6)
    cauce.apply(spec(upstream.url, prices={"echo": {"input": 1.0, "output": 1.0}}))
    assert connections.client("llm").chat(QUESTION).cost == pytest.approx(11 / 1e6)


# -- through a server: the key stays on the caller's side -------------------------------------


def test_put_stores_where_the_key_is_read_and_each_call_reads_it_there(
    seam_workspace: Workspace, upstream: Upstream, keyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {k: v for k, v in spec(upstream.url).items() if k not in ("kind", "name")}
    made = connections.put("llm", body)
    assert made.spec["api_key"] == {"env": "LLM_KEY"} and not made.has_secret
    assert [c.name for c in connections.list_connections()] == ["llm"]
    assert connections.get("llm") == made
    connections.client("llm").chat(QUESTION)
    assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    monkeypatch.setenv("LLM_KEY", SECRET + "-rotated")
    connections.client("llm").chat(QUESTION)
    assert upstream.requests[-1]["headers"]["authorization"].endswith("-rotated")
    with pytest.raises(InvalidInput, match="api_key holds the key itself") as caught:
        connections.put("inline", {**body, "api_key": SECRET})
    assert SECRET not in str(caught.value)
    with pytest.raises(InvalidInput, match="max_retries"):
        connections.put("llm", {**body, "max_retries": 99})
    assert connections.get("llm") == made
    connections.delete("llm")
    with pytest.raises(NotFound, match="no connection named 'llm'"):
        connections.get("llm")
    with pytest.raises(NotFound, match="no connection named 'llm'"):
        connections.delete("llm")


def test_no_connection_route_ever_answers_a_key(
    remote_workspace: Workspace, upstream: Upstream, keyed: None
) -> None:
    """Keys stored encrypted in the server's own workspace (applied on its machine) and keys
    read on the caller's side: no answer of a connection route holds one, or its ciphertext."""
    import httpx

    from remote import server_side

    on_server = server_side(remote_workspace)
    cauce.apply(
        [spec(upstream.url), spec(upstream.url, name="inline", api_key=SECRET)],
        workspace=on_server,
    )
    body = {k: v for k, v in spec(upstream.url).items() if k not in ("kind", "name")}
    url = f"{remote_workspace.settings.server_url}/api/v1"
    answers = [
        httpx.put(f"{url}/connections/by-ref", json={"spec": body}),
        httpx.get(f"{url}/connections"),
        *(httpx.get(f"{url}/connections/{n}") for n in ("llm", "inline", "by-ref", "none")),
        httpx.put(f"{url}/connections/bad", json={"spec": {**body, "api_key": SECRET}}),
        httpx.get(f"{url}/audit", params={"limit": 1000}),
        httpx.delete(f"{url}/connections/by-ref"),
        httpx.delete(f"{url}/connections/by-ref"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 404, 422, 200, 204, 404]
    with on_server.store.read() as conn:
        tokens = [t for t in conn.execute(select(connections_table.c.secret)).scalars() if t]
    assert len(tokens) == 2
    for answer in answers:
        assert SECRET not in answer.text
        assert not [t for t in tokens if t in answer.text]
    # Each caller reads the key where the spec says; a key kept by the server stays there.
    connections.client("llm").chat(QUESTION)
    assert upstream.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    with pytest.raises(cauce.errors.NotSupported, match="a key never leaves a server"):
        connections.client("inline")


def test_applied_on_a_server_a_spec_keeps_only_where_its_key_is_read(
    local_workspace: Workspace, keyed: None
) -> None:
    from cauce.workspace import using

    with using(local_workspace, "eve"):  # as a server answering eve's request
        cauce.apply(spec("http://127.0.0.1:9/v1"))
        with pytest.raises(InvalidInput, match="api_key holds the key itself"):
            cauce.apply(spec("http://127.0.0.1:9/v1", name="inline", api_key=SECRET))
    found = connections.get("llm")
    assert found.spec["api_key"] == {"env": "LLM_KEY"} and not found.has_secret
    assert [c.name for c in connections.list_connections()] == ["llm"]
