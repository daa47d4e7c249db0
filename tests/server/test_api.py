"""The REST API that ``cauce server`` builds from the SDK's operations: shapes, errors, blobs,
workspaces, roles, and the client's behaviour when the server is away."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from cauce.client import ServerClient
from cauce.errors import BackendError, NotFound
from cauce.server.app import create_app, operations
from cauce.server.tokens import create_token
from cauce.workspace import Workspace
from served import free_port


@pytest.fixture
def api(local_workspace: Workspace) -> Iterator[TestClient]:
    """The server's app over a fresh workspace, answered in-process (auth off: loopback)."""
    with TestClient(create_app(local_workspace, max_upload=1024), base_url="http://t") as client:
        yield client


def _run(api: TestClient, prefix: str = "") -> str:
    answer = api.post(f"{prefix}/api/v1/runs", json={"experiment": "e"})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["run_id"])


def _error(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert set(body) >= {"code", "message", "details"}
    assert body["code"] == code
    return dict(body)


def test_every_operation_has_resolvable_types_and_a_route() -> None:
    ops = operations()
    assert len(ops) >= 17
    for op in ops.values():
        for name in op.params:
            op.adapter(name)  # raises when an annotation cannot be resolved
        if op.returns is not None:
            op.adapter("return")
        assert all(p in op.params for p in op.path_params)


def test_the_openapi_document_describes_each_operation(api: TestClient) -> None:
    document = api.get("/api/v1/openapi.json").json()
    metric = document["paths"]["/api/v1/runs/{run_id}/metric"]["post"]
    body = metric["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"key", "value", "step", "timestamp"}
    assert body["required"] == ["key", "value"]
    assert set(metric["responses"]) == {"204", "4XX", "5XX"}
    run = document["paths"]["/api/v1/runs/{run_id}"]["get"]
    answer = run["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(answer["properties"]) == {"info", "data", "inputs"}
    assert "RunInfo" in document["components"]["schemas"]
    search = document["paths"]["/api/v1/runs"]["get"]
    assert {p["name"] for p in search["parameters"]} == {
        "experiment",
        "filter",
        "order_by",
        "max_results",
        "offset",
        "lifecycle",
        "page_size",
        "page_token",
    }


def test_a_run_logged_over_http_reads_back(api: TestClient) -> None:
    run_id = _run(api)
    assert (
        api.post(f"/api/v1/runs/{run_id}/metric", json={"key": "auc", "value": 0.9}).status_code
        == 204
    )
    assert api.post(f"/api/v1/runs/{run_id}/params", json={"values": {"C": 1}}).status_code == 204
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["data"] == {"metrics": {"auc": 0.9}, "params": {"C": "1"}, "tags": {}}
    found = api.get("/api/v1/runs", params={"filter": "metrics.auc > 0.5", "experiment": "e"})
    assert [r["info"]["run_id"] for r in found.json()["items"]] == [run_id]


def test_errors_answer_in_one_shape_naming_the_field(api: TestClient) -> None:
    _error(api.get("/api/v1/runs/nope"), 404, "not-found")
    run_id = _run(api)
    bad = _error(
        api.post(f"/api/v1/runs/{run_id}/metrics", json={"values": [1, 2]}), 422, "invalid-input"
    )
    assert bad["details"]["field"].startswith("values")
    # Every bad field is named, the first in the message.
    both = _error(
        api.post(f"/api/v1/runs/{run_id}/metric", json={"key": [1], "value": 1, "step": {}}),
        422,
        "invalid-input",
    )
    assert both["details"]["field"] == "key" and both["message"].startswith("key: ")
    assert [e.split(":")[0] for e in both["details"]["errors"]] == ["key", "step"]
    unknown = _error(
        api.post(f"/api/v1/runs/{run_id}/metric", json={"key": "a", "value": 1, "colour": 2}),
        422,
        "invalid-input",
    )
    assert unknown["details"]["field"] == "colour"
    clash = _error(
        api.post(f"/api/v1/runs/{run_id}/metric", json={"run_id": "x", "key": "a", "value": 1}),
        422,
        "invalid-input",
    )
    assert clash["details"]["field"] == "run_id"
    _error(
        api.post(f"/api/v1/runs/{run_id}/metric", content=b"{not json", headers=_JSON),
        400,
        "bad-request",
    )
    _error(
        api.post(f"/api/v1/runs/{run_id}/metric", content=b"[1]", headers=_JSON),
        400,
        "bad-request",
    )
    nested = b"[" * 100_000 + b"]" * 100_000  # Python's parser gives up: RecursionError
    deep = _error(
        api.post(f"/api/v1/runs/{run_id}/metric", content=nested, headers=_JSON), 400, "bad-request"
    )
    assert deep["details"]["field"] == "body"
    gzipped = api.post(
        f"/api/v1/runs/{run_id}/metric",
        content=b"{}",
        headers={**_JSON, "content-encoding": "gzip"},
    )
    _error(gzipped, 415, "unsupported-media-type")
    _error(
        api.post(
            f"/api/v1/runs/{run_id}/metric", content=b"k=v", headers={"content-type": "text/plain"}
        ),
        415,
        "unsupported-media-type",
    )
    too_big = b'{"values": {"a": "' + b"x" * (32 * 1024**2) + b'"}}'
    _error(
        api.post(f"/api/v1/runs/{run_id}/params", content=too_big, headers=_JSON),
        413,
        "payload-too-large",
    )
    _error(api.get("/api/v1/nowhere"), 404, "not-found")
    _error(api.put("/api/v1/runs"), 405, "method-not-allowed")


_JSON = {"content-type": "application/json"}


def test_blobs_go_up_checked_and_come_down(api: TestClient) -> None:
    data = b"a,b\n1,2\n"
    digest = hashlib.sha256(data).hexdigest()
    assert api.head(f"/api/v1/blobs/{digest}").status_code == 404
    wrong = _error(api.put(f"/api/v1/blobs/{'0' * 64}", content=data), 422, "invalid-input")
    assert wrong["details"]["field"] == "sha256"
    assert api.put(f"/api/v1/blobs/{digest}", content=data).status_code == 201
    assert api.head(f"/api/v1/blobs/{digest}").status_code == 200
    assert api.get(f"/api/v1/blobs/{digest}").content == data
    big = b"x" * 2048  # over the fixture's 1 KiB limit
    _error(
        api.put(f"/api/v1/blobs/{hashlib.sha256(big).hexdigest()}", content=big),
        413,
        "payload-too-large",
    )
    _error(api.put("/api/v1/blobs/../../etc", content=data), 404, "not-found")
    _error(api.put("/api/v1/blobs/" + "z" * 64, content=data), 422, "invalid-input")


def test_workspaces_are_apart_and_addressed_by_prefix(api: TestClient) -> None:
    assert api.post("/api/v1/workspaces", json={"name": "team-a"}).status_code == 201
    _error(api.post("/api/v1/workspaces", json={"name": "team-a"}), 409, "already-exists")
    _error(api.post("/api/v1/workspaces", json={}), 422, "invalid-input")
    in_a = _run(api, "/w/team-a")
    assert api.get(f"/w/team-a/api/v1/runs/{in_a}").status_code == 200
    _error(api.get(f"/api/v1/runs/{in_a}"), 404, "not-found")
    _error(api.get("/w/nobody/api/v1/runs"), 404, "not-found")
    assert api.get("/api/v1/workspaces").json() == {"workspaces": ["default", "team-a"]}


def test_with_a_token_every_route_needs_it_and_roles_hold(local_workspace: Workspace) -> None:
    _, viewer = create_token("vic", "viewer", home=local_workspace)
    _, editor = create_token("eve", "editor", home=local_workspace)
    with TestClient(create_app(local_workspace), base_url="http://t") as api:
        _error(api.get("/api/v1/runs"), 401, "unauthorized")
        _error(api.get("/api/v1/runs", headers=_bearer("ct-wrong")), 401, "unauthorized")
        assert api.get("/api/v1/runs", headers=_bearer(viewer)).status_code == 200
        _error(
            api.post("/api/v1/runs", json={"experiment": "e"}, headers=_bearer(viewer)),
            403,
            "forbidden",
        )
        made = api.post("/api/v1/runs", json={"experiment": "e"}, headers=_bearer(editor))
        assert made.json()["user_id"] == "eve"  # the principal, not the server's user
        _error(
            api.post("/api/v1/workspaces", json={"name": "x"}, headers=_bearer(editor)),
            403,
            "forbidden",
        )
        # MLflow's routes too.
        mlflow = "/api/2.0/mlflow/experiments/search"
        assert api.get(mlflow).status_code == 401
        assert api.get(mlflow, headers=_bearer(viewer)).status_code == 200


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_client_retries_then_names_the_server_that_is_away(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = ServerClient(url, retry_for=1.0)
    started = time.monotonic()
    with pytest.raises(BackendError, match=f"the Cauce server at {url} did not answer"):
        client.request("GET", "/runs", idempotent=True)
    # Backoff doubles from 50-100 ms and stops before the next wait would pass retry_for.
    assert 0.25 < time.monotonic() - started < 5


def test_the_client_turns_error_bodies_back_into_the_same_errors(api: TestClient) -> None:
    from cauce.client import error_from_body

    error = error_from_body(api.get("/api/v1/runs/nope"))
    assert isinstance(error, NotFound)
    assert "nope" in error.message


def test_lists_come_a_page_at_a_time_with_cursor_tokens(api: TestClient) -> None:
    made = [_run(api) for _ in range(7)]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params: dict[str, Any] = {"experiment": "e", "page_size": 3}
        if token:
            params["page_token"] = token
        page = api.get("/api/v1/runs", params=params).json()
        seen += [r["info"]["run_id"] for r in page["items"]]
        pages += 1
        token = page["next_page_token"]
        if not token:
            break
    assert pages == 3 and sorted(seen) == sorted(made) and len(set(seen)) == 7
    capped = api.get("/api/v1/runs", params={"max_results": 4, "page_size": 3}).json()
    rest = api.get(
        "/api/v1/runs",
        params={"max_results": 4, "page_size": 3, "page_token": capped["next_page_token"]},
    ).json()
    assert len(capped["items"]) == 3 and len(rest["items"]) == 1
    assert rest["next_page_token"] is None
    # A token belongs to its query; a forged one, or a size out of range, is named.
    other = _error(
        api.get(
            "/api/v1/runs", params={"experiment": "x", "page_token": capped["next_page_token"]}
        ),
        422,
        "invalid-input",
    )
    assert other["details"]["field"] == "page_token"
    _error(api.get("/api/v1/runs", params={"page_token": "nonsense"}), 422, "invalid-input")
    size = _error(api.get("/api/v1/runs", params={"page_size": 0}), 422, "invalid-input")
    assert size["details"]["field"] == "page_size"
    experiments = api.get("/api/v1/experiments", params={"page_size": 1}).json()
    assert len(experiments["items"]) == 1 and experiments["next_page_token"] is None


def test_an_audit_actor_named_by_a_client_is_kept_beside_the_principal(
    local_workspace: Workspace,
) -> None:
    from sklearn.linear_model import LogisticRegression

    import cauce
    from cauce.lineage import events

    with cauce.start_run(experiment="e"):
        cauce.log_model(LogisticRegression().fit([[0], [1]], [0, 1]), "m", registered_model="m")
    _, token = create_token("eve", "editor", home=local_workspace)
    with TestClient(create_app(local_workspace), base_url="http://t") as api:
        moved = api.put(
            "/api/v1/models/m/aliases/champion",
            json={"version": 1, "actor": "the-agent"},
            headers=_bearer(token),
        )
        assert moved.status_code < 300, moved.text
    (event,) = events(local_workspace, action="model.alias.*")
    assert event.actor == "eve (as the-agent)"


def test_an_integer_beyond_64_bits_is_refused_naming_the_field(api: TestClient) -> None:
    run_id = _run(api)
    huge = 13769144127120781312
    answer = api.post(f"/api/v1/runs/{run_id}/metric", json={"key": "a", "value": 1, "step": huge})
    assert _error(answer, 422, "invalid-input")["details"]["field"] == "step"
    # Beside another bad field, it is one of the list, not raised before the other is seen.
    both = api.post(f"/api/v1/runs/{run_id}/metric", json={"key": [1], "value": 1, "step": huge})
    errors = _error(both, 422, "invalid-input")["details"]["errors"]
    assert [e.split(":")[0] for e in errors] == ["key", "step"] and "64-bit" in errors[1]
    _error(api.get(f"/api/v1/models/m/versions/{huge}"), 422, "invalid-input")
