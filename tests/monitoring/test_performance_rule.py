"""A gate and a monitor measure a model with one rule: the same values on the same rows.

One classifier with text labels (``churned``/``stayed``) answers 300 requests; the real collector
records its answers (the class and both class probabilities). The same 300 rows, with their
labels, are a holdout dataset for the gate; the labels alone arrive for the monitor. Each metric
is read from a gate check (an evaluation) and from a monitor's ``model_performance`` signal, with
the positive class named and defaulted, and both are checked against ``sklearn.metrics``. Both
decide the default positive class from the model's classes, so a window (or a holdout) that
holds one class keeps it; both need a score of the positive class for ``roc_auc``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm

import cauce
from builders import customers
from cauce import stats
from cauce.monitoring.monitors import MonitorRun, run_monitor
from cauce.registry.gates import check
from cauce.specs import apply
from cauce.store import now_ms
from cauce.workspace import Workspace
from served import CHURN_BLUE, record_requests

FEATURES = ["charges", "tenure"]
ROWS = 300


def outcome(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """What happened: ``churned`` or ``stayed``, noisy in charges (so no metric is perfect)."""
    rng = np.random.default_rng(seed)
    churned = frame["charges"] + rng.normal(0, 15, len(frame)) > 80
    return np.where(churned, "churned", "stayed")


@pytest.fixture
def served(workspace: Workspace, tmp_path: Path) -> dict[str, Any]:
    """Model churn/1 served as churn/blue; ROWS requests collected a minute before ``now``."""
    from sklearn.linear_model import LogisticRegression

    training = customers(2000, seed=0).assign(churned=lambda f: outcome(f, seed=1))
    version = cauce.data.register("training", training)
    with cauce.start_run(experiment="churn"):
        cauce.log_input(version, context="training")
        model = LogisticRegression(max_iter=500).fit(training[FEATURES], training["churned"])
        cauce.log_model(
            model, "model", registered_model="churn", input_example=training[FEATURES].head(5)
        )
    (tmp_path / "endpoint.yaml").write_text(CHURN_BLUE)
    apply(tmp_path / "endpoint.yaml")

    holdout = customers(ROWS, seed=9)
    truth = outcome(holdout, seed=10)
    predicted = model.predict(holdout[FEATURES])
    proba = model.predict_proba(holdout[FEATURES])  # columns: model.classes_
    cauce.data.register("holdout", holdout.assign(churned=truth))
    ids = [f"req-{i}" for i in range(ROWS)]
    cauce.data.register("labels", pd.DataFrame({"request_id": ids, "churned": truth}))

    answers = [
        {
            "prediction": str(label),
            **{f"p_{c}": float(p) for c, p in zip(model.classes_, row, strict=True)},
        }
        for label, row in zip(predicted, proba, strict=True)
    ]
    now = now_ms()
    record_requests(workspace, holdout.to_dict("records"), answers, at=now - 60_000, ids=ids)
    return {
        "now": now,
        "truth": truth,
        "predicted": predicted,
        "proba": proba,
        "model": model,
        "holdout": holdout,
        "training": training,
    }


def gate_check(rule: dict[str, Any], metrics: list[str], data: str = "holdout") -> Any:
    policy = {
        "kind": "Gate",
        "name": "same-rule",
        "data": data,
        "label": "churned",
        **rule,
        "rules": [{"metric": {"name": m, "min": 0.0}} for m in metrics],
    }
    return check("models:/churn/1", policy)


def gate_values(rule: dict[str, Any], metrics: list[str], data: str = "holdout") -> dict[str, Any]:
    result = gate_check(rule, metrics, data)
    assert result.passed, result.reason
    return {r.name.removeprefix("metric "): r.value for r in result.rules}


def monitor_run(
    now: int,
    metric: str,
    labels: str = "labels",
    reference: dict[str, str] | None = None,
    **settings: Any,
) -> MonitorRun:
    apply(
        workspace=cauce.workspace.current(),
        source={
            "kind": "Monitor",
            "name": "churn-quality",
            "target": {"endpoint": "churn"},
            "reference": reference or {"model": "models:/churn/1"},
            "signals": [
                {
                    "model_performance": {
                        "metric": metric,
                        "min": 0.0,
                        "labels": {
                            "dataset": labels,
                            "join_on": "request_id",
                            "label": "churned",
                        },
                        **settings,
                    }
                }
            ],
        },
    )
    return run_monitor("churn-quality", now=now)


def monitor_signal(now: int, metric: str, **settings: Any) -> dict[str, Any]:
    run = monitor_run(now, metric, **settings)
    assert run.status == "ok", run.error
    [value] = [v for v in run.values if v["signal"] == "model_performance"]
    return value


def monitor_value(now: int, metric: str, **settings: Any) -> float:
    value = monitor_signal(now, metric, **settings)
    assert value["details"]["labelled"] == value["details"]["predictions"] == ROWS, value
    return float(value["value"])


CASES = [
    # the positive class named: the same in the gate policy and in the monitor spec
    pytest.param({"positive": "churned"}, "churned", "binary", id="positive-named"),
    # defaulted: the greater of the model's two classes, "stayed", on both sides
    pytest.param({}, "stayed", "binary", id="positive-defaulted"),
    pytest.param({"average": "macro"}, None, "macro", id="macro"),
]


@pytest.mark.parametrize(("rule", "positive", "average"), CASES)
def test_a_gate_and_a_monitor_give_the_same_values_on_the_same_rows(
    served: dict[str, Any], rule: dict[str, Any], positive: str | None, average: str
) -> None:
    metrics = ["accuracy", "precision", "recall", "f1"]
    if average == "binary":
        metrics.append("roc_auc")  # a monitor's score column is the positive class's score
    gate = gate_check(rule, metrics)
    assert gate.passed, gate.reason
    score = {"score": f"p_{positive}"} if positive else {}
    signals = {m: monitor_signal(served["now"], m, **rule, **score) for m in metrics}
    monitor = {m: v["value"] for m, v in signals.items()}
    assert monitor == pytest.approx({r.name[7:]: r.value for r in gate.rules}, rel=1e-12, abs=1e-12)
    # both say the rule they counted by
    used = {"average": average, **({"positive": positive} if positive else {})}
    for result in gate.rules[1:]:
        assert {k: result.details.get(k) for k in ("positive", "average")} == {
            "positive": positive, "average": average
        }  # fmt: skip
        details = signals[result.name[7:]]["details"]
        assert details == {"predictions": ROWS, "labelled": ROWS, **used}

    truth, predicted = served["truth"], served["predicted"]
    kw: dict[str, Any] = {"zero_division": 0, "average": average}
    if positive:
        kw["pos_label"] = positive
    expected = {
        "accuracy": skm.accuracy_score(truth, predicted),
        "precision": skm.precision_score(truth, predicted, **kw),
        "recall": skm.recall_score(truth, predicted, **kw),
        "f1": skm.f1_score(truth, predicted, **kw),
    }
    if positive:
        column = list(served["model"].classes_).index(positive)
        expected["roc_auc"] = skm.roc_auc_score(truth == positive, served["proba"][:, column])
    assert monitor == pytest.approx(expected, rel=1e-9)
    assert 0.5 < monitor["recall"] < 1.0  # a real, imperfect model: the check can tell rules apart


def test_a_window_with_one_class_keeps_the_models_positive_class(served: dict[str, Any]) -> None:
    """Rows that all churned, and that the model said would: the positive class stays "stayed"
    (the greater of the model's classes) on both sides, so precision, recall and F1 are 0 as
    scikit-learn's zero_division gives them, and no ROC AUC can be computed, on both sides."""
    truth, predicted = served["truth"], served["predicted"]
    rows = np.flatnonzero((truth == "churned") & (predicted == "churned"))
    assert 20 < len(rows) < ROWS
    holdout = served["holdout"].iloc[rows].assign(churned="churned")
    cauce.data.register("churned_only", holdout)
    ids = [f"req-{i}" for i in rows]
    cauce.data.register("churned_labels", pd.DataFrame({"request_id": ids, "churned": "churned"}))

    metrics = ["accuracy", "precision", "recall", "f1"]
    gate = gate_check({}, [*metrics, "roc_auc"], data="churned_only")
    signals = {
        m: monitor_signal(served["now"], m, labels="churned_labels", score="p_stayed")
        for m in [*metrics, "roc_auc"]
    }
    kw: dict[str, Any] = {
        "pos_label": "stayed",
        "labels": ["churned", "stayed"],
        "zero_division": 0,
    }
    expected = {
        "accuracy": 1.0,
        "precision": skm.precision_score(truth[rows], predicted[rows], **kw),
        "recall": skm.recall_score(truth[rows], predicted[rows], **kw),
        "f1": skm.f1_score(truth[rows], predicted[rows], **kw),
    }
    assert expected["precision"] == expected["recall"] == expected["f1"] == 0.0
    by_name = {r.name[7:]: r for r in gate.rules}
    assert {m: by_name[m].value for m in metrics} == expected
    assert {m: signals[m]["value"] for m in metrics} == expected
    for metric in metrics[1:]:
        assert by_name[metric].details["positive"] == signals[metric]["details"]["positive"]
        assert signals[metric]["details"]["positive"] == "stayed"
    # ROC AUC: undefined on one class, on both sides, with the same reason
    reason = stats.undefined("roc_auc")
    assert not by_name["roc_auc"].passed and by_name["roc_auc"].value is None
    assert by_name["roc_auc"].message == f"roc_auc was not computed on churned_only@1: {reason}"
    assert signals["roc_auc"]["outcome"] == "not_computed"
    assert signals["roc_auc"]["details"]["reason"] == reason


def test_roc_auc_without_a_score_is_not_computed_on_both_sides(served: dict[str, Any]) -> None:
    from sklearn.linear_model import RidgeClassifier

    signal = monitor_signal(served["now"], "roc_auc")  # no score column named
    assert signal["value"] is None and signal["outcome"] == "not_computed"
    assert signal["details"]["reason"].startswith(stats.NO_SCORE)
    assert signal["details"]["positive"] == "stayed"

    # a model without predict_proba: its evaluation has no roc_auc either, and says why
    training = served["training"]
    with cauce.start_run(experiment="churn"):
        ridge = RidgeClassifier().fit(training[FEATURES], training["churned"])
        cauce.log_model(ridge, "model", registered_model="churn")
    result = check(
        "models:/churn/2",
        {
            "kind": "Gate",
            "name": "auc",
            "data": "holdout",
            "label": "churned",
            "rules": [{"metric": {"name": "roc_auc", "min": 0.5}}],
        },
    )
    [rule] = result.rules
    assert not rule.passed and rule.value is None
    assert rule.message.startswith(f"roc_auc was not computed on holdout@1: {stats.NO_SCORE}")
    assert "predict_proba" in rule.message


def test_a_reference_dataset_that_holds_the_label_knows_the_classes(
    served: dict[str, Any],
) -> None:
    """Without the model, the reference's label column gives the classes: the same default."""
    signal = monitor_signal(served["now"], "precision", reference={"dataset": "training"})
    assert signal["details"]["positive"] == "stayed"
    assert signal["value"] == pytest.approx(gate_values({}, ["precision"])["precision"])


def test_without_known_classes_text_labels_must_name_their_positive(
    served: dict[str, Any],
) -> None:
    """A reference that knows no classes (no model, no label column): the labels' type decides,
    and text has no default to fall back on; it never comes from the window."""
    cauce.data.register("features", served["training"][FEATURES])
    unknown = {"dataset": "features"}
    run = monitor_run(served["now"], "precision", reference=unknown)
    assert run.status == "failed" and run.error is not None
    assert "the labels are text and their classes are not known: name positive" in run.error
    named = monitor_signal(served["now"], "recall", reference=unknown, positive="churned")
    assert named["details"]["positive"] == "churned"
    gate = gate_values({"positive": "churned"}, ["recall", "accuracy"])
    assert named["value"] == pytest.approx(gate["recall"], rel=1e-12)
    accuracy = monitor_signal(served["now"], "accuracy", reference=unknown)  # needs no positive
    assert accuracy["value"] == pytest.approx(gate["accuracy"], rel=1e-12)


def test_the_defaults_differ_from_a_named_positive_and_both_sides_say_so(
    served: dict[str, Any],
) -> None:
    named = gate_values({"positive": "churned"}, ["precision"])["precision"]
    defaulted = gate_values({}, ["precision"])["precision"]
    assert named != pytest.approx(defaulted)
    assert monitor_value(served["now"], "precision") == pytest.approx(defaulted, rel=1e-12)


def test_a_positive_that_is_not_a_label_is_refused_on_both_sides(served: dict[str, Any]) -> None:
    result = gate_check({"positive": "yes"}, ["precision"])
    assert not result.passed
    assert "positive label 'yes' is not one of the labels ['churned', 'stayed']" in result.reason
    run = monitor_run(served["now"], "precision", positive="yes")
    assert run.status == "failed" and run.error is not None
    assert "positive label 'yes' is not one of the labels ['churned', 'stayed']" in run.error


def test_a_gate_rule_that_names_its_own_average_replaces_the_policys_pair(
    served: dict[str, Any],
) -> None:
    policy = {
        "kind": "Gate",
        "name": "mixed",
        "data": "holdout",
        "label": "churned",
        "positive": "churned",
        "rules": [
            {"metric": {"name": "f1", "min": 0.0}},
            {"name": "macro f1", "metric": {"name": "f1", "min": 0.0, "average": "macro"}},
        ],
    }
    result = check("models:/churn/1", policy)
    named, macro = result.rules
    truth, predicted = served["truth"], served["predicted"]
    assert named.value == pytest.approx(skm.f1_score(truth, predicted, pos_label="churned"))
    assert named.details["positive"] == "churned" and named.details["average"] == "binary"
    assert macro.value == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert macro.details["average"] == "macro" and "positive" not in macro.details


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        (
            {"positive": "churned", "average": "macro"},
            "signals.0.model_performance",
            "positive applies to average binary; with average macro every class counts",
        ),
        (
            {"positive": ["churned"]},
            "signals.0.model_performance.positive",
            "a class label is non-empty text, a number or a boolean",
        ),
        ({"average": "samples"}, "signals.0.model_performance.average", "'binary', 'micro'"),
    ],
)
def test_a_monitor_spec_with_a_rule_that_cannot_apply_is_refused(
    workspace: Workspace, settings: dict[str, Any], field: str, words: str
) -> None:
    """The same check as a gate policy's and an evaluation's (cauce.stats.check_rule)."""
    from cauce.errors import InvalidInput
    from cauce.monitoring.monitors import list_monitors

    with pytest.raises(InvalidInput) as caught:
        monitor_run(0, "precision", **settings)
    assert caught.value.details["field"] == field and words in str(caught.value)
    assert list_monitors() == []
