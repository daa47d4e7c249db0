"""Gates: policies checked on real scikit-learn versions registered in a temporary workspace.

Every rule passes and fails here at least once; the regression rule compares against a champion
evaluated on the same dataset version, and the CLI is run as a real process for its exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cauce
from builders import churn
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.registry.evaluations import evaluations
from cauce.registry.gates import GatePolicy, check, load_policy
from cauce.workspace import Workspace
from clitools import assert_one_line_error
from clitools import cauce as run_cli
from remote import server_side

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "churn-gate.yaml"
FEATURES = ["age", "charges"]
SUITE = {
    "kind": "CheckSuite",
    "name": "customers-basic",
    "checks": [{"not_null": {"column": "age"}}, {"range": {"column": "age", "min": 18}}],
}
STRICT = {
    "kind": "CheckSuite",
    "name": "customers-strict",
    "checks": [{"range": {"column": "age", "min": 30}}],
}
POLICY = """
kind: Gate
name: churn-promotion
data: customers_holdout
label: churned
rules:
  - metric: {name: roc_auc, min: 0.75}
  - metric: {name: val_auc, min: 0.8, source: run}
  - regression: {metric: roc_auc, max_drop: 0.01}
  - checks_passed: {}
  - card: {required: [description, signature, input_example, training_data, intended_use]}
"""


def good() -> Any:
    from sklearn.linear_model import LogisticRegression

    frame = churn()
    return LogisticRegression().fit(frame[FEATURES], frame["churned"])


def poor() -> Any:
    from sklearn.dummy import DummyClassifier

    frame = churn()
    return DummyClassifier().fit(frame[FEATURES], frame["churned"])  # roc_auc 0.5


def add_version(
    model: Any,
    *,
    data: Any = "customers",
    context: str = "training",
    description: str | None = "Churn classifier",
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
    name: str = "churn",
    example: pd.DataFrame | None = None,
) -> Any:
    """Train-run bookkeeping for ``model``: inputs, metrics, then a new registered version."""
    with cauce.start_run(experiment=name):
        if data is not None:
            cauce.log_input(data, context=context)
        cauce.log_params({"model": type(model).__name__})
        cauce.log_metrics(metrics if metrics is not None else {"val_auc": 0.84})
        return cauce.log_model(
            model,
            "model",
            registered_model=name,
            input_example=churn()[FEATURES].head(3) if example is None else example,
            description=description,
            tags={"intended_use": "monthly churn outreach"} if tags is None else tags,
        )


@pytest.fixture
def world(workspace: Workspace) -> Workspace:
    """Checked training data, a holdout table, and churn v1 (a good model) as the champion."""
    training = cauce.data.register("customers", churn())
    cauce.data.validate(training, SUITE)
    cauce.data.register("customers_holdout", churn(seed=1))
    add_version(good())
    cauce.models.set_alias("churn", "champion", 1)
    return workspace


def by_name(result: Any) -> dict[str, Any]:
    return {r.name: r for r in result.rules}


def test_every_rule_passes_and_the_check_is_audited(world: Workspace) -> None:
    candidate = add_version(good())
    result = check("models:/churn/2", POLICY, actor="ci-bot")
    assert result.passed, result.reason
    assert result.model == "models:/churn/2" and result.model_version_id == candidate.id
    rules = by_name(result)
    assert list(rules) == [
        "metric roc_auc",
        "metric val_auc",
        "regression roc_auc vs champion",
        "checks_passed",
        "card",
    ]
    assert all(r.passed for r in result.rules)

    (stored,) = evaluations("models:/churn/2")
    assert rules["metric roc_auc"].value == stored.metrics["roc_auc"] > 0.75
    assert rules["metric roc_auc"].threshold == {"min": 0.75}
    assert rules["metric roc_auc"].details["dataset"] == "customers_holdout@1"
    assert (
        rules["metric val_auc"].value == 0.84 and rules["metric val_auc"].details["source"] == "run"
    )

    # The champion was evaluated on demand, on the same dataset version as the candidate.
    (champion,) = evaluations("models:/churn@champion")
    assert champion.dataset_version_id == stored.dataset_version_id
    regression = rules["regression roc_auc vs champion"]
    assert regression.details["baseline_version"] == 1
    assert regression.details["baseline"] == champion.metrics["roc_auc"]
    assert regression.value == pytest.approx(
        champion.metrics["roc_auc"] - stored.metrics["roc_auc"]
    )
    assert regression.threshold == 0.01
    assert rules["checks_passed"].value == rules["checks_passed"].threshold == 1
    assert "customers@1 passed" in rules["checks_passed"].message
    assert rules["card"].value == []

    # Through a server, an actor the client names is kept beside the authenticated principal.
    actor = "tester (as ci-bot)" if world.remote else "ci-bot"
    (event,) = audit.events(server_side(world), action="gate.check")
    assert (event.entity_kind, event.entity_id, event.actor) == (
        "model_version",
        candidate.id,
        actor,
    )
    assert event.after is not None
    assert event.after["passed"] is True and event.after["failed"] == []
    assert (
        event.after["reason"]
        == result.reason
        == ("gate churn-promotion passed for models:/churn/2: all 5 rules passed")
    )
    assert [r["name"] for r in event.after["rules"]] == list(rules)

    # Checking again reuses the stored evaluations and audits the new check.
    assert check("models:/churn/2", POLICY).passed
    assert len(evaluations("models:/churn/2")) == 1
    assert [e.actor for e in audit.events(server_side(world), action="gate.check")] == [
        "tester",
        actor,
    ]


def test_failing_rules_give_value_threshold_and_reason(world: Workspace) -> None:
    candidate = add_version(poor(), description=None, tags={}, metrics={"val_loss": 0.7})
    policy = POLICY + "  - metric: {name: accuracy, max: 0.1}\n"
    result = check("models:/churn/2", policy)
    assert not result.passed
    rules = by_name(result)
    assert [r.name for r in result.failures] == [
        "metric roc_auc",
        "metric val_auc",
        "regression roc_auc vs champion",
        "card",
        "metric accuracy",
    ]
    auc = rules["metric roc_auc"]
    assert (auc.value, auc.threshold) == (0.5, {"min": 0.75})
    assert auc.message == "roc_auc 0.5 on customers_holdout@1 < min 0.75"
    accuracy = rules["metric accuracy"]
    assert accuracy.value > 0.1 and accuracy.message.endswith("> max 0.1")
    assert rules["metric val_auc"].value is None
    assert "no metric val_auc in run" in rules["metric val_auc"].message
    assert "(measured: val_loss)" in rules["metric val_auc"].message
    regression = rules["regression roc_auc vs champion"]
    assert regression.value > 0.3 and "> max 0.01" in regression.message
    assert "vs champion v1" in regression.message
    assert rules["card"].value == ["description", "intended_use"]
    assert rules["card"].message == "missing or empty: description, intended_use"
    assert rules["checks_passed"].passed  # the data was fine: only the model is bad

    assert result.reason.startswith("gate churn-promotion failed for models:/churn/2: 5 of 6")
    assert "metric roc_auc: roc_auc 0.5 on customers_holdout@1 < min 0.75" in result.reason
    (event,) = audit.events(
        server_side(world), entity_kind="model_version", entity_id=candidate.id
    )[:1]
    assert event.action == "gate.check" and event.after is not None
    assert event.after["passed"] is False
    assert event.after["failed"] == [r.name for r in result.failures]
    assert event.after["reason"] == result.reason


def test_first_model_passes_regression_with_a_note(workspace: Workspace) -> None:
    cauce.data.register("customers", churn())
    cauce.data.register("customers_holdout", churn(seed=1))
    add_version(poor(), data=None)
    policy = {
        "kind": "Gate",
        "name": "first",
        "data": "customers_holdout",
        "label": "churned",
        "rules": [{"regression": {"metric": "roc_auc", "max_drop": 0.0}}],
    }
    result = check("models:/churn/1", policy)
    assert result.passed
    (rule,) = result.rules
    assert rule.message == "no champion yet: nothing to compare against (first model)"
    assert rule.details["baseline_version"] is None
    assert evaluations("models:/churn/1") == []  # nothing to compare: nothing evaluated

    # The champion checked against itself passes too.
    cauce.models.set_alias("churn", "champion", 1)
    (rule,) = check("models:/churn@champion", policy).rules
    assert rule.passed and rule.message == "models:/churn/1 is the champion itself"


def test_regression_of_an_error_metric_is_an_increase(workspace: Workspace) -> None:
    from sklearn.dummy import DummyRegressor
    from sklearn.linear_model import LinearRegression

    frame = churn().assign(spend=lambda f: f["charges"] * 12 + f["age"])[
        ["age", "charges", "spend"]
    ]
    cauce.data.register("spend", frame)
    x, y = frame[FEATURES], frame["spend"]
    common = {"data": "spend", "name": "spend", "example": x.head(3)}
    add_version(LinearRegression().fit(x, y), **common)
    cauce.models.set_alias("spend", "champion", 1)
    add_version(DummyRegressor().fit(x, y), **common)
    policy = {
        "kind": "Gate",
        "name": "spend",
        "data": "spend",
        "label": "spend",
        "rules": [
            {"regression": {"metric": "rmse", "max_drop": 1.0}},
            {
                "name": "told",
                "regression": {"metric": "rmse", "max_drop": 1.0, "higher_is_better": True},
            },
            {"metric": {"name": "r2", "max": 0.5}},
        ],
    }
    result = check("models:/spend/2", policy)
    rules = by_name(result)
    rmse = rules["regression rmse vs champion"]
    assert not rmse.passed and rmse.details["higher_is_better"] is False
    assert rmse.value == pytest.approx(rmse.details["candidate"] - rmse.details["baseline"])
    # Told that higher is better, the larger error reads as an improvement.
    assert rules["told"].passed and rules["told"].value < 0
    assert rules["metric r2"].passed  # a constant predictor: r2 about 0


def test_checks_passed_follows_the_newest_result_of_each_suite(world: Workspace) -> None:
    add_version(good())
    rule = {"kind": "Gate", "name": "data", "rules": [{"checks_passed": {}}]}
    only_basic = {
        "kind": "Gate",
        "name": "basic",
        "rules": [{"checks_passed": {"suite": "customers-basic"}}],
    }
    assert check("models:/churn/2", rule).passed

    # A failing suite on the training data fails the rule and names the failing check.
    cauce.data.validate("customers@1", STRICT, raise_on_failure=False)
    (failed,) = check("models:/churn/2", rule).rules
    assert not failed.passed
    assert failed.message == "customers@1: customers-strict failed (range(age))"
    assert failed.details["datasets"] == {
        "customers@1": {"customers-basic": True, "customers-strict": False}
    }
    assert (failed.value, failed.threshold) == (0, 1)
    # Restricted to one suite, only that suite's verdict counts.
    assert check("models:/churn/2", only_basic).passed
    # The newest result of a suite is its verdict: the relaxed suite passes now.
    relaxed = {**STRICT, "checks": [{"range": {"column": "age", "min": 18}}]}
    cauce.data.validate("customers@1", relaxed)
    assert check("models:/churn/2", rule).passed


def test_checks_passed_needs_checked_training_data(world: Workspace) -> None:
    cauce.data.register("unchecked", churn(seed=3))
    add_version(good(), data="unchecked")  # v2
    add_version(good(), data=None)  # v3
    with cauce.start_run(experiment="churn") as run:
        cauce.log_input("customers@1", context="training")
        cauce.log_input("unchecked@1", context="evaluation")
        cauce.log_model(good(), "model", registered_model="churn")  # v4
    rule = {"kind": "Gate", "name": "data", "rules": [{"checks_passed": {}}]}
    (unchecked,) = check("models:/churn/2", rule).rules
    assert not unchecked.passed
    assert unchecked.message == "unchecked@1: never validated with any check suite"
    (no_inputs,) = check("models:/churn/3", rule).rules
    assert not no_inputs.passed and "recorded no dataset inputs" in no_inputs.message
    # Every input counts by default; contexts narrow it to the data the model was trained on.
    assert not check("models:/churn/4", rule).passed
    training = {
        "kind": "Gate",
        "name": "t",
        "rules": [{"checks_passed": {"contexts": ["training"]}}],
    }
    (trained,) = check("models:/churn/4", training).rules
    assert trained.passed and trained.message == "customers@1 passed their check suites"
    assert run.run_id
    suite = {"kind": "Gate", "name": "s", "rules": [{"checks_passed": {"suite": "other"}}]}
    (other,) = check("models:/churn/1", suite).rules
    assert other.message == "customers@1: never validated with check suite 'other'"


def test_promoted_data_keeps_the_verdict_of_its_source(world: Workspace) -> None:
    promoted = cauce.data.promote("customers@1", SUITE, name="customers_silver").version
    add_version(good(), data=promoted)
    rule = {"kind": "Gate", "name": "data", "rules": [{"checks_passed": {}}]}
    (verdict,) = check("models:/churn/2", rule).rules
    assert verdict.passed, verdict.message
    assert verdict.details["datasets"] == {"customers_silver@1": {"customers-basic": True}}


def test_card_fields(world: Workspace) -> None:
    add_version(good(), description="   ", tags={}, data=None, metrics={})
    required = ["description", "signature", "input_example", "requirements", "source_run"]
    required += ["training_data", "metrics", "params", "intended_use", "tags.owner"]
    policy = {"kind": "Gate", "name": "card", "rules": [{"card": {"required": required}}]}
    (card,) = check("models:/churn/2", policy).rules
    assert card.value == ["description", "training_data", "metrics", "intended_use", "tags.owner"]
    assert card.threshold == required

    # A model description counts for its versions; tags come from the version or the model.
    cauce.models.update_model("churn", description="Who leaves next month")
    cauce.models.set_model_tag("churn", "owner", "growth team")
    cauce.models.set_version_tag("churn", 2, "intended_use", "outreach")
    (card,) = check("models:/churn/2", policy).rules
    assert card.value == ["training_data", "metrics"]

    bare = {
        "kind": "Gate",
        "name": "card",
        "rules": [{"card": {"required": ["signature", "params"]}}],
    }
    with cauce.start_run(experiment="churn"):
        cauce.log_model(good(), "model", registered_model="churn")  # v3: no example, no params
    (card,) = check("models:/churn/3", bare).rules
    assert not card.passed and card.value == ["signature", "params"]


def test_policy_data_is_resolved_per_check(world: Workspace) -> None:
    add_version(good())
    cauce.data.register("customers_holdout", churn(seed=2))
    newest = check("models:/churn/2", POLICY)
    assert by_name(newest)["metric roc_auc"].details["dataset"] == "customers_holdout@2"
    pinned = POLICY.replace("data: customers_holdout", "data: customers_holdout@1")
    assert by_name(check("models:/churn/2", pinned))["metric roc_auc"].details["dataset"] == (
        "customers_holdout@1"
    )
    # A rule may name its own dataset and label.
    own = {
        "kind": "Gate",
        "name": "own",
        "rules": [
            {
                "metric": {
                    "name": "roc_auc",
                    "min": 0.5,
                    "data": "customers_holdout@1",
                    "label": "churned",
                }
            }
        ],
    }
    (rule,) = check("models:/churn/2", own).rules
    assert rule.passed and rule.details["dataset"] == "customers_holdout@1"


def test_a_rule_that_cannot_be_measured_fails_with_the_reason(world: Workspace) -> None:
    add_version(good())
    broken = POLICY.replace("data: customers_holdout", "data: customers_gone")
    result = check("models:/churn/2", broken)
    rules = by_name(result)
    assert rules["metric roc_auc"].message == (
        "could not be measured: dataset version 'customers_gone' does not exist"
    )
    assert rules["checks_passed"].passed and rules["card"].passed  # the others still ran
    (event,) = audit.events(server_side(world), action="gate.check")
    assert event.after is not None and "customers_gone" in event.after["reason"]


BAD_POLICIES = [
    ("  - accuracy: {min: 0.8}", "rules.0.accuracy", "the fields here are name, metric"),
    ("  - metric: {min: 0.8}", "rules.0.metric.name", "Field required"),
    ("  - metric: {name: roc_auc, min: high}", "rules.0.metric.min", "valid number"),
    ("  - metric: {name: roc_auc}", "rules.0.metric", "give min, max or both"),
    ("  - metric: {name: roc_auc, min: 0.9, max: 0.1}", "rules.0.metric", "greater than max"),
    ("  - metric: {name: roc_auc, min: 0.8, source: holdout}", "rules.0.metric.source", "'auto'"),
    ("  - regression: {metric: roc_auc, max_drop: -1}", "rules.0.regression.max_drop", "0"),
    ("  - regression: {metric: roc_auc}", "rules.0.regression.max_drop", "Field required"),
    ("  - card: {required: description}", "rules.0.card.required", "valid list"),
    ("  - card: {required: [signature]}\n    checks_passed: {}", "rules.0", "exactly one of"),
    ("  - {name: nothing}", "rules.0", "this one has none"),
    ("  - regression: {metric: roc_auc, max_drop: 0.01}", "rules.0.regression.data", "same data"),
    (
        "  - metric: {name: roc_auc, min: 0.8, source: evaluation}",
        "rules.0.metric.data",
        "set data",
    ),
    (
        "  - metric: {name: roc_auc, min: 0.8, data: customers_holdout}",
        "rules.0.metric.label",
        "needs the label column",
    ),
    (
        "  - metric: {name: f1, min: 0.8, data: d, label: y, positive: 1, average: macro}",
        "rules.0.metric.positive",
        "positive applies to average binary; with average macro every class counts",
    ),
    (
        "  - regression: {metric: f1, max_drop: 0, data: d, label: y, average: mean}",
        "rules.0.regression.average",
        "Input should be 'binary', 'micro', 'macro' or 'weighted'",
    ),
    (
        "  - metric: {name: f1, min: 0.8, positive: [1]}",
        "rules.0.metric.positive",
        "a class label is non-empty text, a number or a boolean, got [1]",
    ),
]


@pytest.mark.parametrize(("rule", "field", "words"), BAD_POLICIES)
def test_bad_policy_names_the_field(
    world: Workspace, tmp_path: Path, rule: str, field: str, words: str
) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(f"kind: Gate\nname: bad\nrules:\n{rule}\n")
    with pytest.raises(InvalidInput) as exc:
        check("models:/churn/1", path)
    assert exc.value.details["field"] == field
    assert exc.value.message.startswith(f"gate policy {path}: Gate spec: {field}: ")
    assert words in exc.value.message
    assert audit.events(server_side(world), action="gate.check") == []


def test_a_policys_own_positive_and_average_must_go_together(
    world: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / "gates.yaml"
    path.write_text(
        "kind: Gate\nname: bad\ndata: d\nlabel: y\npositive: 1\naverage: weighted\n"
        "rules:\n  - metric: {name: f1, min: 0.5}\n"
    )
    with pytest.raises(InvalidInput) as exc:
        check("models:/churn/1", path)
    assert exc.value.details["field"] == "positive"
    assert "positive applies to average binary; with average weighted" in exc.value.message


def test_bad_policy_documents(world: Workspace, tmp_path: Path) -> None:
    cases = {
        "name: no-kind\nrules: [{checks_passed: {}}]": "kind: Field required",
        "kind: CheckSuite\nname: x\nrules: [{checks_passed: {}}]": "kind: Input should be 'Gate'",
        "kind: Gate\nname: empty\nrules: []": "rules: List should have at least 1 item",
        "kind: Gate\nrules: [{checks_passed: {}}]": "name: Field required",
        "kind: Gate\nname: x\nrules: [{checks_passed: {}}]\n---\nkind: Gate\n": "one YAML document",
        "kind: Gate\nname: [unclosed": "is not valid YAML",
        "- just\n- a list": "must be a mapping",
    }
    for text, words in cases.items():
        path = tmp_path / "gates.yaml"
        path.write_text(text)
        with pytest.raises(InvalidInput, match=words.replace("[", r"\[")):
            load_policy(path)
    with pytest.raises(NotFound, match=r"gate policy file .*missing\.yaml does not exist"):
        check("models:/churn/1", tmp_path / "missing.yaml")
    # Bare checks_passed (YAML null) means checks_passed: {}.
    parsed = load_policy("kind: Gate\nname: bare\nrules:\n  - checks_passed:\n")
    assert isinstance(parsed, GatePolicy) and parsed.rules[0].kind == "checks_passed"


def test_unknown_model_is_not_found(world: Workspace) -> None:
    with pytest.raises(NotFound, match="model 'nope' does not exist"):
        check("models:/nope/1", POLICY)
    with pytest.raises(NotFound, match="model 'churn' has no version 9"):
        check("models:/churn/9", POLICY)
    with pytest.raises(NotFound, match="model 'churn' has no alias 'challenger'"):
        check("models:/churn@challenger", POLICY)
    assert audit.events(server_side(world), action="gate.check") == []


def test_the_example_policy_passes_a_good_challenger(world: Workspace) -> None:
    policy = load_policy(EXAMPLE)
    assert policy.name == "churn-promotion"
    add_version(good())
    cauce.models.set_alias("churn", "challenger", 2)
    result = check("models:/churn@challenger", EXAMPLE)
    assert result.passed, result.reason
    assert result.model == "models:/churn/2"


@pytest.mark.slow
def test_cli_exit_codes_and_one_line_error(world: Workspace, tmp_path: Path) -> None:
    home = tmp_path / "ws"  # the workspace fixture's home
    add_version(good())
    add_version(poor(), description=None, tags={})
    cauce.models.set_alias("churn", "challenger", 2)

    passed = run_cli(home, "gate", "check", "models:/churn@challenger", "--policy", str(EXAMPLE))
    assert "Passed: models:/churn/2 meets gate churn-promotion" in passed.stdout
    assert "no worse than the champion" in passed.stdout and "pass" in passed.stdout

    failed = run_cli(home, "gate", "check", "models:/churn/3", "-p", str(EXAMPLE), check=False)
    assert_one_line_error(
        failed,
        "gate churn-promotion failed for models:/churn/3",
        "metric roc_auc: roc_auc 0.5 on customers_holdout@1 < min 0.75",
        "no worse than the champion",
        "card: missing or empty: description, intended_use",
    )
    assert "FAIL" in failed.stdout

    import json

    as_json = run_cli(
        home, "gate", "check", "models:/churn/3", "-p", str(EXAMPLE), "--json", check=False
    )
    assert as_json.returncode == 1
    body = json.loads(as_json.stdout)
    assert body["passed"] is False and body["model"] == "models:/churn/3"
    assert [r["name"] for r in body["rules"] if not r["passed"]] == [
        "metric roc_auc",
        "no worse than the champion",
        "card",
    ]  # the dummy predicts the majority class, churned: its recall is 1

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Gate\nname: bad\nrules:\n  - accuracy: {min: 0.8}\n")
    refused = run_cli(home, "gate", "check", "models:/churn/2", "--policy", str(bad), check=False)
    assert_one_line_error(refused, "rules.0.accuracy", "unknown field")

    evaluated = run_cli(
        home, "models", "evaluate", "models:/churn/1", "--data", "customers_holdout@1",
        "--label", "churned", "--json",
    )  # fmt: skip
    stored = json.loads(evaluated.stdout)
    assert stored["task"] == "classification" and stored["dataset"] == "customers_holdout@1"
    assert stored["id"] == evaluations("models:/churn/1")[0].id  # evaluated by the gate already
    assert (stored["positive"], stored["average"]) == ("1", "binary")  # the rule it counted by
    spelled = run_cli(
        home, "models", "evaluate", "models:/churn/1", "--data", "customers_holdout@1",
        "--label", "churned", "--positive", "1", "--json",
    )  # fmt: skip
    assert json.loads(spelled.stdout)["id"] == stored["id"]  # the default's class: the same one
    shown = run_cli(
        home, "models", "evaluate", "models:/churn/1", "--data", "customers_holdout@1",
        "--label", "churned",
    )  # fmt: skip
    assert "positive 1, average binary" in " ".join(shown.stdout.split())
    named = run_cli(
        home, "models", "evaluate", "models:/churn/1", "--data", "customers_holdout@1",
        "--label", "churned", "--positive", "0", "--json",
    )  # fmt: skip
    other = json.loads(named.stdout)
    assert other["positive"] == "0" and other["average"] == "binary"
    assert other["id"] != stored["id"]
    assert other["metrics"]["precision"] != stored["metrics"]["precision"]
    refused = run_cli(
        home, "models", "evaluate", "models:/churn/1", "--data", "customers_holdout@1",
        "--label", "churned", "--average", "samples", check=False,
    )  # fmt: skip
    assert_one_line_error(refused, "average must be one of binary, micro, macro, weighted")

    actors = {e.actor for e in audit.events(server_side(world), action="gate.check")}
    # Through a server the principal it authenticates acts (here: the server's own user).
    assert actors == {"tester" if world.remote else "cli-tester"}


def test_docs_name_every_policy_field_and_card_field() -> None:
    from cauce.registry import gates

    docs = EXAMPLE.parents[1]
    text = (docs / "gates.md").read_text()
    specs = [gates.GatePolicy, gates.Rule, gates.MetricRule, gates.RegressionRule]
    specs += [gates.ChecksPassedRule, gates.CardRule]
    fields = {name for spec in specs for name in spec.model_fields}
    missing = sorted(f for f in fields | set(gates.CARD_FIELDS) if f"`{f}`" not in text)
    assert not missing, f"fields missing from docs/gates.md: {missing}"

    # The CI page's workflow is valid YAML that sets up Python, installs cauce and runs the gate.
    import yaml

    ci = (docs / "ci.md").read_text()
    workflow = yaml.safe_load(ci.split("```yaml\n", 1)[1].split("```", 1)[0])
    steps = workflow["jobs"]["gate"]["steps"]
    assert any(s.get("uses", "").startswith("actions/setup-python") for s in steps)
    runs = [s.get("run", "") for s in steps]
    assert any("pip install" in r and "cauce" in r for r in runs)
    assert "cauce gate check models:/churn@challenger --policy gates.yaml" in runs
