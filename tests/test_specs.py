"""The spec front door: ``cauce.apply`` and ``cauce apply -f``, on SQLite, on PostgreSQL and
through a ``cauce server`` (``any_workspace``).

Every kind goes through the same steps (parse, check, save in one transaction), so these tests
read the whole store before and after: a refused or dry-run apply must leave every table,
audit log included, as it was.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cauce
from cauce import specs
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.serving.endpoints import get_endpoint, set_traffic
from cauce.workspace import Workspace
from clitools import assert_one_line_error
from clitools import cauce as run_cli
from remote import server_side
from stored import snapshot

EXAMPLES = Path(__file__).parents[1] / "docs" / "examples"

SCHEDULE = """
kind: Schedule
name: nightly
pipeline: pipelines/training.py:training
cron: "0 2 * * *"
"""
MONITOR = """
kind: Monitor
name: churn-drift
target: {endpoint: churn}
reference: {dataset: customers}
signals:
  - data_drift: {threshold: 0.1}
"""
DEPLOYMENT = """
kind: Deployment
endpoint: churn
name: blue
model: models:/churn/1
"""
ENDPOINT = """
kind: Endpoint
name: churn
traffic: {blue: 100}
"""
GREEN = """
kind: Deployment
endpoint: churn
name: green
model: models:/churn/1
"""
ROLLOUT = """
kind: Rollout
endpoint: churn
candidate: green
stable: blue
steps: [{weight: 10, pause: 1h}, {weight: 100}]
"""


def text(*documents: str) -> str:
    return "\n---\n".join(textwrap.dedent(d) for d in documents)


def outcomes(results: list[specs.Applied]) -> list[tuple[str, str, str]]:
    return [(r.kind, r.name, r.outcome) for r in results]


def score(data: Any) -> Any:
    """A model that predicts 0 for every row."""
    return [0] * len(data)


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """A fresh workspace on SQLite, on PostgreSQL, then on a ``cauce server``."""
    return seam_any_workspace


@pytest.fixture
def ready(any_workspace: Workspace) -> Workspace:
    """Model ``churn`` v1 (alias champion, v2 challenger) and dataset ``customers``: what the
    specs here refer to."""
    example = pd.DataFrame({"age": [30, 40], "charges": [50.0, 60.0]})
    for _ in range(2):
        with cauce.start_run(experiment="churn"):
            cauce.log_model(score, "model", registered_model="churn", input_example=example)
    cauce.models.set_alias("churn", "champion", 1)
    cauce.models.set_alias("churn", "challenger", 2)
    cauce.data.register("customers", example)
    return any_workspace


# -- all or nothing ---------------------------------------------------------------------------


def test_a_bad_monitor_after_a_good_schedule_applies_nothing(ready: Workspace) -> None:
    before = snapshot(server_side(ready))
    bad = MONITOR.replace("threshold: 0.1", "threshold: -1")
    with pytest.raises(InvalidInput) as caught:
        cauce.apply(text(SCHEDULE, ENDPOINT, DEPLOYMENT, bad))
    assert str(caught.value).startswith("document 4: Monitor spec: signals.0.data_drift.threshold")
    assert caught.value.details["field"] == "signals.0.data_drift.threshold"
    assert snapshot(server_side(ready)) == before


def test_a_reference_that_resolves_to_nothing_applies_nothing(ready: Workspace) -> None:
    before = snapshot(server_side(ready))
    served = (SCHEDULE, ENDPOINT, DEPLOYMENT)
    cases = [
        ((SCHEDULE, MONITOR), NotFound, "document 2: endpoint 'churn' does not exist"),
        ((*served, MONITOR.replace(": customers", ": nope")), NotFound, "4: dataset .*'nope'"),
        ((*served, MONITOR.replace("{dataset: customers}", "{model: 'models:/churn/9'}")),
         NotFound, "document 4: model 'churn' has no version 9"),
        ((SCHEDULE, DEPLOYMENT), NotFound, "document 2: endpoint 'churn' does not exist"),
        ((SCHEDULE, ENDPOINT), InvalidInput, "document 2: .*traffic names deployment 'blue'"),
        ((SCHEDULE, ROLLOUT), NotFound, "document 2: endpoint 'churn' does not exist"),
    ]  # fmt: skip
    for documents, error, words in cases:
        with pytest.raises(error, match=words):
            cauce.apply(text(*documents))
    with pytest.raises(NotFound, match="document 4: endpoint 'churn' has no deployment 'green'"):
        cauce.apply(text(SCHEDULE, ENDPOINT, DEPLOYMENT, ROLLOUT))
    with pytest.raises(NotFound, match="model 'churn' has no version 7"):
        cauce.apply(text(ENDPOINT, DEPLOYMENT.replace("churn/1", "churn/7")))
    assert snapshot(server_side(ready)) == before


def test_a_failure_while_saving_rolls_back_every_document(ready: Workspace) -> None:
    """Every reference resolves, but the rollout cannot start (no deployment takes live
    traffic): the schedule, endpoint and deployments saved before it are rolled back."""
    before = snapshot(server_side(ready))
    no_traffic = ENDPOINT.replace("{blue: 100}", "{}")
    with pytest.raises(InvalidInput, match="document 5: deployment 'blue' takes no live traffic"):
        cauce.apply(text(SCHEDULE, no_traffic, DEPLOYMENT, GREEN, ROLLOUT))
    assert snapshot(server_side(ready)) == before


def test_a_kind_is_applied_after_the_kinds_it_refers_to(ready: Workspace) -> None:
    results = cauce.apply(text(MONITOR, SCHEDULE, DEPLOYMENT, ENDPOINT))
    # Results come in the order given; the writes went Endpoint, Deployment, then Monitor.
    assert outcomes(results) == [
        ("Monitor", "churn-drift", "created"),
        ("Schedule", "nightly", "created"),
        ("Deployment", "churn/blue", "created"),
        ("Endpoint", "churn", "created"),
    ]
    assert [r.source for r in results] == [f"document {n}" for n in (1, 2, 3, 4)]
    created = [e.action for e in reversed(audit.events(ready)) if e.action.endswith(".create")]
    assert created.index("endpoint.create") < created.index("deployment.create")
    assert created.index("deployment.create") < created.index("monitor.create")
    assert get_endpoint("churn").traffic == {"blue": 100}


def test_the_same_document_twice_is_refused(ready: Workspace) -> None:
    with pytest.raises(InvalidInput, match="document 2: Schedule nightly is declared twice"):
        cauce.apply(text(SCHEDULE, SCHEDULE))
    assert cauce.apply(text(SCHEDULE))[0].outcome == "created"


# -- dry run and idempotence ------------------------------------------------------------------


def test_a_dry_run_reports_what_apply_does_and_changes_nothing(ready: Workspace) -> None:
    documents = text(ENDPOINT, DEPLOYMENT, GREEN, MONITOR, SCHEDULE)
    empty = snapshot(server_side(ready))
    planned = cauce.apply(documents, dry_run=True)
    assert [r.outcome for r in planned] == ["created"] * 5
    assert snapshot(server_side(ready)) == empty
    assert cauce.apply(documents) == planned
    applied = snapshot(server_side(ready))
    assert applied != empty

    changed = text(
        ENDPOINT,
        DEPLOYMENT + "workers: 2\n",
        GREEN.replace("churn/1", "churn@challenger"),
        MONITOR.replace("threshold: 0.1", "threshold: 0.2"),
        SCHEDULE,
    )
    planned = cauce.apply(changed, dry_run=True)
    assert snapshot(server_side(ready)) == applied
    assert outcomes(planned) == [
        ("Endpoint", "churn", "unchanged"),
        ("Deployment", "churn/blue", "updated"),
        ("Deployment", "churn/green", "updated"),
        ("Monitor", "churn-drift", "updated"),
        ("Schedule", "nightly", "unchanged"),
    ]
    by_name = {r.name: [(c.field, c.old, c.new) for c in r.changes] for r in planned}
    assert by_name["churn/blue"] == [("workers", 1, 2)]
    assert by_name["churn/green"] == [
        ("model", "models:/churn/1", "models:/churn@challenger"),
        ("model_version", "models:/churn/1", "models:/churn/2"),
    ]
    assert by_name["churn-drift"] == [("signals.0.data_drift.threshold", 0.1, 0.2)]
    assert by_name["churn"] == by_name["nightly"] == []

    assert cauce.apply(changed) == planned
    assert get_endpoint("churn").deployment("green").model_version == 2
    again = snapshot(server_side(ready))
    assert [r.outcome for r in cauce.apply(changed)] == ["unchanged"] * 5
    assert snapshot(server_side(ready)) == again


def test_reapplying_never_resets_traffic_a_rollout_or_a_person_moved(ready: Workspace) -> None:
    documents = text(ENDPOINT, DEPLOYMENT, GREEN, ROLLOUT)
    cauce.apply(documents)
    assert get_endpoint("churn").traffic == {"blue": 90, "green": 10}  # the rollout's first step
    after_rollout = snapshot(server_side(ready))
    assert [r.outcome for r in cauce.apply(documents)] == ["unchanged"] * 4
    assert snapshot(server_side(ready)) == after_rollout

    from cauce.serving import rollouts

    rollouts.abort("churn")
    set_traffic("churn", {"blue": 50, "green": 50}, reason="by hand")
    without_rollout = text(ENDPOINT, DEPLOYMENT + "workers: 2\n", GREEN)
    assert [r.outcome for r in cauce.apply(without_rollout)] == [
        "unchanged",
        "updated",
        "unchanged",
    ]
    assert get_endpoint("churn").traffic == {"blue": 50, "green": 50}


# -- sources ----------------------------------------------------------------------------------


def test_a_folder_applies_its_yaml_files_sorted_by_name(ready: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    (folder / "later").mkdir(parents=True)
    (folder / "b-endpoint.yaml").write_text(ENDPOINT)
    (folder / "a-deployment.yml").write_text(DEPLOYMENT + "---\n" + textwrap.dedent(SCHEDULE))
    (folder / "notes.txt").write_text("kind: Nope")
    (folder / "later" / "c.yaml").write_text("kind: Nope")  # subfolders are not read
    results = cauce.apply(folder)
    assert [(r.kind, r.source) for r in results] == [
        ("Deployment", f"{folder}/a-deployment.yml document 1"),
        ("Schedule", f"{folder}/a-deployment.yml document 2"),
        ("Endpoint", f"{folder}/b-endpoint.yaml document 1"),
    ]
    assert [r.outcome for r in specs.apply(str(folder))] == ["unchanged"] * 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="holds no spec documents"):
        cauce.apply(tmp_path / "empty")
    for missing in ("missing.yaml", "missing-folder", tmp_path / "missing"):
        with pytest.raises(NotFound, match="no such spec file or folder"):
            cauce.apply(missing)


def test_the_sdk_takes_text_a_mapping_or_a_list(ready: Workspace, tmp_path: Path) -> None:
    import yaml

    schedule = yaml.safe_load(SCHEDULE)
    assert cauce.apply(schedule, dry_run=True)[0].outcome == "created"
    assert cauce.apply([schedule])[0].to_dict() == {
        "kind": "Schedule",
        "name": "nightly",
        "outcome": "created",
        "changes": [],
        "source": "document 1",
    }
    [updated] = cauce.apply(SCHEDULE.replace("0 2", "0 3"))
    assert updated.changes == (specs.Change("cron", "0 2 * * *", "0 3 * * *"),)
    path = tmp_path / "schedule.yaml"
    path.write_text(SCHEDULE)
    assert cauce.apply(path)[0].source == f"{path} document 1"
    with pytest.raises(InvalidInput, match="the list of documents holds no spec documents"):
        cauce.apply([])


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("kind: Nope\nname: x\n", "document 2: unknown kind 'Nope' (known kinds: Endpoint,"),
        ("name: x\n", "document 2 needs a 'kind' field"),
        ("- a list\n", "document 2 needs a 'kind' field"),
        (MONITOR + "colour: red\n", "document 2: Monitor spec: colour: unknown field; the fields"),
        ("kind: Schedule\nname: [\n", "is not valid YAML"),
    ],
)
def test_a_bad_document_is_named_with_its_position(
    ready: Workspace, document: str, words: str
) -> None:
    before = snapshot(server_side(ready))
    with pytest.raises(InvalidInput) as caught:
        cauce.apply(text(SCHEDULE, document))
    assert words in str(caught.value)
    assert snapshot(server_side(ready)) == before


def test_a_misspelt_field_is_named_with_the_field_it_was_meant_to_be() -> None:
    """Wherever it sits (the top, a list item, a union member, a mapping's value), a field the
    spec does not have names the nearest one it does have, or the fields it takes."""
    from pydantic import BaseModel, ConfigDict, ValidationError

    from cauce.data.suites import CheckSuite
    from cauce.monitoring.specs import MonitorSpec
    from cauce.serving.specs import DeploymentSpec, EndpointSpec
    from cauce.validation import spec_errors

    def errors(model: Any, body: dict[str, Any]) -> list[tuple[str, str]]:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(body)
        return spec_errors(caught.value, model)

    endpoint = {"kind": "Endpoint", "name": "churn"}
    assert errors(EndpointSpec, {**endpoint, "trafic": {"a": 100}}) == [
        ("trafic", "unknown field; did you mean traffic?")
    ]
    [(where, message)] = errors(EndpointSpec, {**endpoint, "trafic": {}, "colour": "red"})
    assert where == "" and message.startswith(
        "unknown fields trafic (did you mean traffic?), colour; the fields here are kind, name, "
    )
    deployment = {"kind": "Deployment", "endpoint": "churn", "name": "blue", "model": "models:/x/1"}
    assert errors(DeploymentSpec, {**deployment, "collect": {"request": True}}) == [
        ("collect.request", "unknown field; did you mean requests?")
    ]
    monitor = {"kind": "Monitor", "name": "m", "target": {"endpoint": "churn"}}
    assert errors(MonitorSpec, {**monitor, "signals": [{"data_drift": {"treshold": 0.1}}]}) == [
        ("signals.0.data_drift.treshold", "unknown field; did you mean threshold?")
    ]
    # The fields a mapping takes are said once, however many of its kind went wrong.
    checks = [{"column": "a", "check": "not_null"}, {"column": "b", "check": "unique"}]
    first, second = errors(CheckSuite, {"kind": "CheckSuite", "name": "s", "checks": checks})
    assert first == (
        "checks.0",
        "unknown fields column, check; the fields here are name, mostly, severity, not_null, "
        "unique, accepted_values, range, regex, row_count, freshness, relationships, sql",
    )
    assert second == ("checks.1", "unknown fields column, check")

    # In a union pydantic names the member it tried; each is answered for.
    class Plain(BaseModel):
        model_config = ConfigDict(extra="forbid")
        alpha: int = 1

    class Other(BaseModel):
        model_config = ConfigDict(extra="forbid")
        beta: int = 1

    class Either(BaseModel):
        model_config = ConfigDict(extra="forbid")
        x: Plain | Other

    assert errors(Either, {"x": {"alpah": 1}}) == [
        ("x.Plain.alpah", "unknown field; did you mean alpha?"),
        ("x.Other.alpah", "unknown field; the fields here are beta"),
    ]
    # Any other error keeps pydantic's words, without its "Value error, ".
    [(where, message)] = errors(EndpointSpec, {**endpoint, "traffic": {"a": "lots"}})
    assert where == "traffic.a" and "valid integer" in message


def test_through_a_server_a_connection_stores_where_its_key_is_read_never_the_key(
    any_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Connection's ``api_key: {env: ...}`` is read by whoever calls it, on their machine;
    through a server a key written in the spec is refused, the whole apply with it."""
    from cauce.genai import connections

    monkeypatch.setenv("LLM_KEY", "sk-here")
    connection = {
        "kind": "Connection",
        "name": "llm",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": {"env": "LLM_KEY"},
    }
    schedule = specs.read(SCHEDULE)[0].body
    assert outcomes(cauce.apply([schedule, connection]))[1] == ("Connection", "llm", "created")
    assert connections.get("llm").spec["api_key"] == {"env": "LLM_KEY"}
    if not any_workspace.remote:
        return
    before = snapshot(server_side(any_workspace))
    written = {**connection, "name": "other", "api_key": "sk-inline"}
    with pytest.raises(InvalidInput) as caught:
        cauce.apply([{**schedule, "name": "another"}, written])
    assert "api_key holds the key itself" in caught.value.message
    assert caught.value.details.get("field") == "api_key"
    assert snapshot(server_side(any_workspace)) == before


# -- the registry -----------------------------------------------------------------------------


def test_every_kind_resolves_and_comes_after_what_it_refers_to() -> None:
    from pydantic import BaseModel

    for kind in specs.KINDS:
        model = specs._load(kind.spec)
        assert issubclass(model, BaseModel), kind.name
        assert model.model_fields["kind"].default == kind.name
        assert callable(specs._load(kind.save))
        assert kind.check is None or callable(specs._load(kind.check))
        assert all(name in model.model_fields for name in kind.key), kind.name
    rank = {kind.name: specs._rank(kind.name) for kind in specs.KINDS}
    assert rank["Endpoint"] < rank["Deployment"] < rank["Rollout"]
    assert rank["Deployment"] < rank["Monitor"]


def test_changes_are_named_by_dotted_paths() -> None:
    before = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": True, "e": []}
    after = {"a": 1, "b": {"c": [1, 3, 4], "d": "x"}, "new": None, "e": [{"f": 1}]}
    assert specs.changes(before, after) == (
        specs.Change("b.c.1", 2, 3),
        specs.Change("b.c.2", None, 4),
        specs.Change("e", [], [{"f": 1}]),
        specs.Change("gone", True, None),
    )


# -- docs/examples ----------------------------------------------------------------------------


def test_the_spec_examples_apply(ready: Workspace) -> None:
    serving, monitor = EXAMPLES / "churn-serving.yaml", EXAMPLES / "churn-monitor.yaml"
    assert outcomes(cauce.apply(serving)) == [
        ("Endpoint", "churn", "created"),
        ("Deployment", "churn/blue", "created"),
        ("Deployment", "churn/green", "created"),
        ("Rollout", "churn/green", "created"),
    ]
    assert outcomes(cauce.apply(monitor)) == [("Monitor", "churn-drift", "created")]
    endpoint = get_endpoint("churn")
    assert endpoint.deployment("green").model_version == 2
    assert endpoint.traffic == {"blue": 90, "green": 10}
    assert [r.outcome for r in cauce.apply(serving) + cauce.apply(monitor)] == ["unchanged"] * 5


def rollout_count(ws: Workspace) -> int:
    from stored import row_count

    return row_count(server_side(ws), "rollouts")


def test_reapplying_the_serving_example_after_promotion_moves_no_traffic(
    ready: Workspace, tmp_path: Path
) -> None:
    """The example's blue serves ``@champion`` and its rollout moves champion to green's
    version: applying the folder again updates blue to that version (the one real change, at
    0% traffic), starts no rollout and moves no traffic; once more, nothing changes at all."""
    from cauce.serving import rollouts

    folder = tmp_path / "specs"
    folder.mkdir()
    for name in ("churn-serving.yaml", "churn-monitor.yaml"):
        (folder / name).write_text((EXAMPLES / name).read_text())
    cauce.apply(folder)
    assert rollouts.promote("churn", full=True).state == "promoted"
    assert get_endpoint("churn").traffic == {"blue": 0, "green": 100}
    assert cauce.models.resolve("models:/churn@champion").version == 2
    promoted_rollouts = rollout_count(ready)

    again = cauce.apply(folder)
    assert outcomes(again) == [  # files by name: churn-monitor.yaml first
        ("Monitor", "churn-drift", "unchanged"),
        ("Endpoint", "churn", "unchanged"),
        ("Deployment", "churn/blue", "updated"),
        ("Deployment", "churn/green", "unchanged"),
        ("Rollout", "churn/green", "unchanged"),
    ]
    blue = again[2]
    assert [(c.field, c.old, c.new) for c in blue.changes] == [
        ("model_version", "models:/churn/1", "models:/churn/2")
    ]
    endpoint = get_endpoint("churn")
    assert endpoint.traffic == {"blue": 0, "green": 100}
    assert endpoint.deployment("blue").model_version == 2
    assert rollout_count(ready) == promoted_rollouts
    assert rollouts.status("churn").state == "promoted"

    settled = snapshot(server_side(ready))
    assert [r.outcome for r in cauce.apply(folder)] == ["unchanged"] * 5
    assert snapshot(server_side(ready)) == settled


def test_reapplying_after_promotion_never_sends_traffic_back(ready: Workspace) -> None:
    """A new challenger after the promotion: the same specs would swap green's model in place
    and roll it out by moving the live traffic back to blue. The apply is refused whole."""
    from cauce.serving import rollouts

    documents = text(ENDPOINT, DEPLOYMENT, GREEN.replace("churn/1", "churn@challenger"), ROLLOUT)
    cauce.apply(documents)
    rollouts.promote("churn", full=True)
    with cauce.start_run(experiment="churn"):
        example = pd.DataFrame({"age": [30], "charges": [50.0]})
        cauce.log_model(score, "model", registered_model="churn", input_example=example)
    cauce.models.set_alias("churn", "challenger", 3)
    before = snapshot(server_side(ready))
    with pytest.raises(InvalidInput) as caught:
        cauce.apply(documents)
    assert "deployment 'blue' takes no live traffic" in caught.value.message
    assert "'green' already takes 100%" in caught.value.message
    assert "put it on a deployment without traffic" in (caught.value.hint or "")
    assert snapshot(server_side(ready)) == before
    assert get_endpoint("churn").deployment("green").model_version == 2


@pytest.mark.parametrize("ended", ["promoted", "aborted"])
def test_reapplying_an_ended_rollout_without_stable_changes_nothing(
    ready: Workspace, ended: str
) -> None:
    from cauce.serving import rollouts

    rollout = ROLLOUT.replace("stable: blue\n", "")
    documents = text(ENDPOINT, DEPLOYMENT, GREEN.replace("churn/1", "churn/2"), rollout)
    assert outcomes(cauce.apply(documents))[-1] == ("Rollout", "churn/green", "created")
    assert rollouts.status("churn").stable == "blue"
    if ended == "promoted":
        rollouts.promote("churn", full=True)
    else:
        rollouts.abort("churn")
    settled = snapshot(server_side(ready))
    assert [r.outcome for r in cauce.apply(documents)] == ["unchanged"] * 4
    assert [r.outcome for r in cauce.apply(documents, dry_run=True)] == ["unchanged"] * 4
    assert snapshot(server_side(ready)) == settled
    # The same rollout with another step is another rollout (after a promotion, refused).
    changed = documents.replace("pause: 1h", "pause: 2h")
    if ended == "aborted":
        assert outcomes(cauce.apply(changed))[-1] == ("Rollout", "churn/green", "created")
    else:
        with pytest.raises(InvalidInput, match="'green' already takes 100%"):
            cauce.apply(changed)


# -- the command line -------------------------------------------------------------------------


def test_cli_dry_run_then_apply_then_json(workspace: Workspace, tmp_path: Path) -> None:
    home = workspace.settings.root
    cauce.data.register("customers", pd.DataFrame({"age": [30, 40]}))
    spec = tmp_path / "specs.yaml"
    spec.write_text(text(SCHEDULE, MONITOR.replace("{endpoint: churn}", "{dataset: customers}")))
    before = snapshot(workspace)
    planned = run_cli(home, "apply", "-f", str(spec), "--dry-run")
    assert planned.stdout.splitlines() == [
        "Schedule nightly: created",
        "Monitor churn-drift: created",
        "dry run: nothing was changed",
    ]
    assert snapshot(workspace) == before
    run_cli(home, "apply", "-f", str(spec))
    spec.write_text(spec.read_text().replace("threshold: 0.1", "threshold: 0.25"))
    changed = run_cli(home, "apply", "-f", str(spec), "--dry-run", "--json")
    assert json.loads(changed.stdout) == {
        "dry_run": True,
        "documents": [
            {
                "kind": "Schedule",
                "name": "nightly",
                "outcome": "unchanged",
                "changes": [],
                "source": f"{spec} document 1",
            },
            {
                "kind": "Monitor",
                "name": "churn-drift",
                "outcome": "updated",
                "changes": [{"field": "signals.0.data_drift.threshold", "old": 0.1, "new": 0.25}],
                "source": f"{spec} document 2",
            },
        ],
    }
    shown = run_cli(home, "apply", "-f", str(spec)).stdout.splitlines()
    assert shown == [
        "Schedule nightly: unchanged",
        "Monitor churn-drift: updated",
        "  signals.0.data_drift.threshold: 0.1 → 0.25",
    ]


def test_cli_errors_are_one_line_and_apply_nothing(workspace: Workspace, tmp_path: Path) -> None:
    home = workspace.settings.root
    cauce.data.register("customers", pd.DataFrame({"age": [30, 40]}))
    before = snapshot(workspace)
    spec = tmp_path / "specs.yaml"
    cases = [
        ("kind: Nope\nname: x\n", [f"{spec} document 2: unknown kind 'Nope'", "Monitor"]),
        ("name: x\n", [f"{spec} document 2 needs a 'kind' field"]),
        (
            MONITOR.replace("threshold: 0.1", "threshold: -1"),
            [f"{spec} document 2: Monitor spec: signals.0.data_drift.threshold:", "0"],
        ),
        (MONITOR, [f"{spec} document 2: endpoint 'churn' does not exist"]),
    ]
    for document, words in cases:
        spec.write_text(text(SCHEDULE, document))
        assert_one_line_error(run_cli(home, "apply", "-f", str(spec), check=False), *words)
    assert_one_line_error(
        run_cli(home, "apply", "-f", str(tmp_path / "nope.yaml"), check=False), "nope.yaml"
    )
    assert_one_line_error(
        run_cli(home, "rollouts", "start", "-f", str(spec), check=False), "no kind: Rollout"
    )
    assert snapshot(workspace) == before
