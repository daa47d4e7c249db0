"""Endpoints and deployments in the store: specs applied, traffic moved, things deleted.

Runs on SQLite, on PostgreSQL and through a ``cauce server`` (``any_workspace``): everything
here is rules about what may change, what is refused before anything changes, and what is kept
(history, audit, lineage).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cauce.errors import AlreadyExists, CauceError, Conflict, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import walk
from cauce.registry import models as registry
from cauce.serving import keys
from cauce.serving.endpoints import (
    delete_deployment,
    delete_endpoint,
    get_deployment,
    get_endpoint,
    set_mirror,
    set_traffic,
    traffic_changes,
)
from cauce.specs import apply
from cauce.workspace import Workspace
from remote import server_side
from stored import row_count, row_counts

ENDPOINT = """
kind: Endpoint
name: churn
traffic: {blue: 100}
"""
BLUE = """
kind: Deployment
endpoint: churn
name: blue
model: models:/churn@champion
workers: 2
"""
GREEN = """
kind: Deployment
endpoint: churn
name: green
model: models:/churn/1
batching: {max_batch_size: 8, max_latency_ms: 2}
collect: {sampling: 0.5}
"""


# What applying endpoint specs writes: none of it may change when applying fails.
WRITTEN = ("endpoints", "deployments", "traffic_history", "audit_events")


def write(tmp_path: Path, *documents: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text("---".join(textwrap.dedent(d) for d in documents))
    return path


@pytest.fixture
def churn(any_workspace: Workspace, tmp_path: Path, churn_model: Any) -> Workspace:
    """Model ``churn`` v1 (alias champion) behind endpoint churn: blue 100%, green 0%."""
    churn_model()
    registry.set_alias("churn", "champion", 1)
    outcomes = apply(write(tmp_path, ENDPOINT, BLUE, GREEN))
    assert [a.outcome for a in outcomes] == ["created"] * 3
    return any_workspace


def test_apply_twice_changes_nothing(churn: Workspace, tmp_path: Path) -> None:
    before = row_counts(server_side(churn), *WRITTEN)
    outcomes = apply(write(tmp_path, ENDPOINT, BLUE, GREEN))
    assert [(a.kind, a.name, a.outcome) for a in outcomes] == [
        ("Endpoint", "churn", "unchanged"),
        ("Deployment", "churn/blue", "unchanged"),
        ("Deployment", "churn/green", "unchanged"),
    ]
    assert row_counts(server_side(churn), *WRITTEN) == before
    endpoint = get_endpoint("churn")
    assert endpoint.traffic == {"blue": 100}
    assert [(d.name, d.model_version, d.workers) for d in endpoint.deployments] == [
        ("blue", 1, 2),
        ("green", 1, 1),
    ]
    assert endpoint.deployment("green").batching == {"max_batch_size": 8, "max_latency_ms": 2}


def test_traffic_to_an_undeclared_deployment_is_refused_before_any_change(
    churn: Workspace, tmp_path: Path
) -> None:
    before = row_counts(server_side(churn), *WRITTEN)
    spec = write(
        tmp_path,
        ENDPOINT.replace("{blue: 100}", "{blue: 50, red: 50}"),
        BLUE.replace("workers: 2", "workers: 3"),
    )
    with pytest.raises(InvalidInput, match="'red'") as caught:
        apply(spec)
    assert caught.value.details["field"] == "traffic.red"
    # The deployment before the bad endpoint in the file was not applied either.
    assert row_counts(server_side(churn), *WRITTEN) == before
    assert get_deployment("churn", "blue").workers == 2


def test_a_mirror_to_an_undeclared_deployment_names_the_mirror_field(
    churn: Workspace, tmp_path: Path
) -> None:
    spec = write(tmp_path, ENDPOINT + "mirror: {shadow: 10}\n")
    with pytest.raises(InvalidInput, match="'shadow'") as caught:
        apply(spec)
    assert caught.value.details["field"] == "mirror.shadow"


def test_set_traffic_names_an_unknown_deployment(churn: Workspace) -> None:
    before = row_counts(server_side(churn), *WRITTEN)
    with pytest.raises(NotFound, match="red") as caught:
        set_traffic("churn", {"blue": 50, "red": 50})
    assert caught.value.details["field"] == "traffic.red"
    assert row_counts(server_side(churn), *WRITTEN) == before


@pytest.mark.parametrize("split", [{"blue": 60, "green": 30}, {"blue": 100, "green": 10}])
def test_traffic_must_sum_to_100_or_0(churn: Workspace, split: dict[str, int]) -> None:
    before = row_counts(server_side(churn), *WRITTEN)
    with pytest.raises(InvalidInput, match="sum to 100") as caught:
        set_traffic("churn", split)
    assert caught.value.details["field"] == "traffic"
    assert row_counts(server_side(churn), *WRITTEN) == before
    assert set_traffic("churn", {"blue": 0, "green": 0}).traffic == {"blue": 0, "green": 0}


def test_traffic_that_does_not_sum_to_100_in_a_spec_names_the_field(
    churn: Workspace, tmp_path: Path
) -> None:
    spec = write(tmp_path, ENDPOINT.replace("{blue: 100}", "{blue: 60, green: 30}"))
    with pytest.raises(InvalidInput, match=r"traffic: .*sum to 100") as caught:
        apply(spec)
    assert caught.value.details["field"] == "traffic"


def test_a_deployment_with_live_traffic_cannot_be_mirrored(churn: Workspace) -> None:
    before = row_counts(server_side(churn), *WRITTEN)
    with pytest.raises(InvalidInput, match="'blue' takes live traffic"):
        set_mirror("churn", {"blue": 50})
    with pytest.raises(InvalidInput, match="one deployment"):
        set_traffic("churn", {"blue": 100}, mirror={"green": 10, "blue": 10})
    assert row_counts(server_side(churn), *WRITTEN) == before
    assert set_mirror("churn", {"green": 25}).mirror == {"green": 25}
    # Moving live traffic onto the mirrored deployment is refused the same way.
    with pytest.raises(InvalidInput, match="'green' takes live traffic"):
        set_traffic("churn", {"blue": 50, "green": 50})


def test_traffic_changes_are_kept_and_audited(churn: Workspace) -> None:
    set_traffic("churn", {"blue": 90, "green": 10}, reason="canary")
    set_mirror("churn", {}, reason="no shadow")
    history = traffic_changes("churn")
    assert [(h["traffic"], h["reason"].split(" ")[0]) for h in history] == [
        ({"blue": 100}, "applied"),
        ({"blue": 90, "green": 10}, "canary"),
        ({"blue": 90, "green": 10}, "no"),
    ]
    assert history[0]["reason"].startswith("applied from spec ")
    assert history[1]["actor"] == "tester"
    endpoint = get_endpoint("churn")
    events = audit.events(churn, entity_id=endpoint.id, action="endpoint.traffic")
    canary = next(e for e in events if e.after and e.after["reason"] == "canary")
    assert canary.before == {"traffic": {"blue": 100}, "mirror": {}}
    assert canary.after == {"traffic": {"blue": 90, "green": 10}, "mirror": {}, "reason": "canary"}
    assert canary.actor == "tester"


def test_only_a_deployment_without_traffic_can_be_deleted(churn: Workspace) -> None:
    with pytest.raises(Conflict, match=r"blue takes 100% of live traffic"):
        delete_deployment("churn", "blue")
    set_mirror("churn", {"green": 10})
    with pytest.raises(Conflict, match="10% mirrored"):
        delete_deployment("churn", "green")
    set_mirror("churn", {})
    revision = get_endpoint("churn").revision
    delete_deployment("churn", "green")
    endpoint = get_endpoint("churn")
    assert [d.name for d in endpoint.deployments] == ["blue"]
    assert endpoint.revision > revision  # a running router notices
    assert audit.events(churn, action="deployment.delete")
    with pytest.raises(NotFound):
        delete_deployment("churn", "green")


def test_an_endpoint_with_deployments_cannot_be_deleted(churn: Workspace) -> None:
    with pytest.raises(Conflict, match="still has deployments: blue, green"):
        delete_endpoint("churn")
    set_traffic("churn", {"blue": 0, "green": 0})
    delete_deployment("churn", "blue")
    delete_deployment("churn", "green")
    delete_endpoint("churn")
    with pytest.raises(NotFound, match="'churn' does not exist"):
        get_endpoint("churn")
    assert row_count(server_side(churn), "traffic_history") == 0


def test_reapplying_after_the_alias_moved_serves_the_new_version(
    churn: Workspace, tmp_path: Path, churn_model: Any
) -> None:
    churn_model(c=0.1)
    registry.set_alias("churn", "champion", 2)
    revision = get_endpoint("churn").revision
    outcomes = apply(write(tmp_path, ENDPOINT, BLUE, GREEN))
    assert [a.outcome for a in outcomes] == ["unchanged", "updated", "unchanged"]
    endpoint = get_endpoint("churn")
    assert endpoint.deployment("blue").model_version == 2
    assert endpoint.deployment("blue").model_uri == "models:/churn@champion"
    assert endpoint.deployment("green").model_version == 1
    assert endpoint.revision > revision
    update = audit.events(churn, action="deployment.update")[0]
    assert update.after is not None and update.after["model_version"] == "models:/churn/2"


def test_applying_deployments_leaves_moved_traffic_where_it_was_moved(
    churn: Workspace, tmp_path: Path
) -> None:
    set_traffic("churn", {"blue": 0, "green": 100}, reason="promoted")
    red = GREEN.replace("name: green", "name: red")
    apply(write(tmp_path, red, name="red.yaml"))
    apply(write(tmp_path, ENDPOINT, BLUE, GREEN))  # the Endpoint spec is unchanged
    assert get_endpoint("churn").traffic == {"blue": 0, "green": 100}
    # A new version of the Endpoint spec sets its traffic again, once.
    changed = ENDPOINT.replace("traffic: {blue: 100}", "traffic: {blue: 50, red: 50}")
    apply(write(tmp_path, changed, name="endpoint.yaml"))
    assert get_endpoint("churn").traffic == {"blue": 50, "red": 50}
    set_traffic("churn", {"blue": 100, "red": 0})
    apply(write(tmp_path, red, name="red.yaml"))
    assert get_endpoint("churn").traffic == {"blue": 100, "red": 0}


def test_lineage_links_the_model_version_to_its_deployment(churn: Workspace) -> None:
    blue = get_deployment("churn", "blue")
    graph = walk(churn, "deployment", blue.id, direction="upstream")
    into = [(e.src.kind, e.src.id, e.relation) for e in graph.edges if e.dst.id == blue.id]
    assert into == [("model_version", blue.model_version_id, "served_by")]
    assert "model churn v1" in {n.label for n in graph.nodes}


BAD_SPECS = [
    (BLUE + "replicas: 2\n", "replicas"),
    (BLUE.replace("workers: 2", "workers: 0"), "workers"),
    (BLUE.replace("models:/churn@champion", "churn"), "model"),
    (BLUE + "batching: {max_batch_size: 0}\n", "batching.max_batch_size"),
    (BLUE + "collect: {sampling: 2}\n", "collect.sampling"),
    (ENDPOINT + "timeout: soon\n", "timeout"),
    (ENDPOINT + "max_request_bytes: 10\n", "max_request_bytes"),
]


def test_a_bad_spec_names_its_field(churn: Workspace, tmp_path: Path) -> None:
    before = row_counts(server_side(churn), *WRITTEN)
    for document, field in BAD_SPECS:
        with pytest.raises(InvalidInput) as caught:
            apply(write(tmp_path, document))
        assert caught.value.details["field"] == field, document
        assert f"spec: {field}:" in str(caught.value)
        if field == "timeout":
            assert "not a duration: 'soon' (write 250ms, 10s, 5m, 1h or 2d)" in str(caught.value)
    assert row_counts(server_side(churn), *WRITTEN) == before


def test_a_deployment_of_an_unknown_endpoint_or_model_is_refused(
    churn: Workspace, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="'nope' does not exist"):
        apply(write(tmp_path, BLUE.replace("endpoint: churn", "endpoint: nope")))
    with pytest.raises(CauceError, match="nope"):
        apply(write(tmp_path, BLUE.replace("models:/churn@champion", "models:/nope/1")))


def test_a_bad_name_is_refused_with_the_reason(churn: Workspace, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="endpoint name 'a/b' must not contain a path"):
        apply(write(tmp_path, ENDPOINT.replace("name: churn", "name: a/b")))
    with pytest.raises(InvalidInput, match="deployment name 'b/c'"):
        apply(write(tmp_path, BLUE.replace("name: blue", "name: b/c")))


def test_api_keys_are_shown_once_listed_and_revoked(churn: Workspace) -> None:
    stored, key = keys.create_key("churn", "team", limits={"token_budget": 100})
    assert key.startswith("ck-") and stored.prefix == key[:9] and stored.user == "tester"
    with pytest.raises(AlreadyExists, match="already has a key named 'team'"):
        keys.create_key("churn", "team")
    with pytest.raises(InvalidInput, match="requests_per_minute") as caught:
        keys.create_key("churn", "other", limits={"requests_per_minute": 0})
    assert caught.value.details["field"] == "requests_per_minute"
    [listed] = keys.list_keys("churn")
    assert listed.limits == {"token_budget": 100, "budget_period": "month"}
    assert listed.spent is not None and listed.spent["requests"] == 0
    revoked = keys.revoke_key("churn", "team")
    assert revoked.revoked_at is not None
    assert keys.revoke_key("churn", "team") == revoked  # once revoked, it stays as it was
    with pytest.raises(NotFound, match="no key named 'nobody'"):
        keys.revoke_key("churn", "nobody")
    [created] = audit.events(churn, action="api_key.create")
    assert created.after is not None and key not in json.dumps(created.after)
