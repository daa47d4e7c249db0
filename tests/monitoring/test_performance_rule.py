"""A gate and a monitor measure a model with one rule: the same values on the same rows.

One classifier with text labels (``churned``/``stayed``) answers 300 requests; the real collector
records its answers (the class and both class probabilities). The same 300 rows, with their
labels, are a holdout dataset for the gate; the labels alone arrive for the monitor. Each metric
is read from a gate check (an evaluation) and from a monitor's ``model_performance`` signal, with
the positive class named and defaulted, and both are checked against ``sklearn.metrics``.
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
from cauce.monitoring.monitors import MonitorRun, apply_monitor, run_monitor
from cauce.registry.gates import check
from cauce.specs import apply_file
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
    apply_file(tmp_path / "endpoint.yaml")

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
    return {"now": now, "truth": truth, "predicted": predicted, "proba": proba, "model": model}


def gate_values(rule: dict[str, Any], metrics: list[str]) -> dict[str, float]:
    policy = {
        "kind": "Gate",
        "name": "same-rule",
        "data": "holdout",
        "label": "churned",
        **rule,
        "rules": [{"metric": {"name": m, "min": 0.0}} for m in metrics],
    }
    result = check("models:/churn/1", policy)
    assert result.passed, result.reason
    return {r.name.removeprefix("metric "): r.value for r in result.rules}


def monitor_run(now: int, metric: str, **settings: Any) -> MonitorRun:
    apply_monitor(
        cauce.workspace.current(),
        {
            "kind": "Monitor",
            "name": "churn-quality",
            "target": {"endpoint": "churn"},
            "reference": {"model": "models:/churn/1"},
            "signals": [
                {
                    "model_performance": {
                        "metric": metric,
                        "min": 0.0,
                        "labels": {
                            "dataset": "labels",
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


def monitor_value(now: int, metric: str, **settings: Any) -> float:
    run = monitor_run(now, metric, **settings)
    [value] = [v for v in run.values if v["signal"] == "model_performance"]
    assert value["details"] == {"predictions": ROWS, "labelled": ROWS}, value
    return float(value["value"])


CASES = [
    # the positive class named: the same in the gate policy and in the monitor spec
    pytest.param({"positive": "churned"}, "churned", "binary", id="positive-named"),
    # defaulted: the greater of the two texts, "stayed", on both sides
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
    gate = gate_values(rule, metrics)
    score = {"score": f"p_{positive}"} if positive else {}
    monitor = {m: monitor_value(served["now"], m, **rule, **score) for m in metrics}
    assert monitor == pytest.approx(gate, rel=1e-12, abs=1e-12)

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
    assert gate == pytest.approx(expected, rel=1e-9)
    assert 0.5 < gate["recall"] < 1.0  # a real, imperfect model: the check can tell rules apart


def test_the_defaults_differ_from_a_named_positive_and_both_sides_say_so(
    served: dict[str, Any],
) -> None:
    named = gate_values({"positive": "churned"}, ["precision"])["precision"]
    defaulted = gate_values({}, ["precision"])["precision"]
    assert named != pytest.approx(defaulted)
    assert monitor_value(served["now"], "precision") == pytest.approx(defaulted, rel=1e-12)


def test_a_positive_that_is_not_a_label_is_refused_on_both_sides(served: dict[str, Any]) -> None:
    result = check(
        "models:/churn/1",
        {
            "kind": "Gate",
            "name": "wrong-positive",
            "data": "holdout",
            "label": "churned",
            "positive": "yes",
            "rules": [{"metric": {"name": "precision", "min": 0.0}}],
        },
    )
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
    assert named.details["positive"] == "churned" and "average" not in named.details
    assert macro.value == pytest.approx(skm.f1_score(truth, predicted, average="macro"))
    assert macro.details["average"] == "macro" and "positive" not in macro.details
