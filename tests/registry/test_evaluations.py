"""Model evaluations: real scikit-learn models scored on registered dataset versions.

The storage rules (one row per version, dataset version and label; lineage; audit) run on SQLite
and PostgreSQL (``any_workspace``); the metric computations on SQLite only.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import inspect

import cauce
from builders import churn
from cauce import stats
from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import walk
from cauce.registry.evaluations import evaluate, evaluations, get_evaluation, lower_is_better
from cauce.workspace import Workspace
from remote import server_side
from stored import row_count

FEATURES = ["age", "charges"]


def register_model(model: Any, frame: pd.DataFrame, *, example: bool = True) -> Any:
    """Log and register ``model`` as a new version of ``churn``."""
    with cauce.start_run(experiment="churn"):
        return cauce.log_model(
            model,
            "model",
            registered_model="churn",
            input_example=frame[FEATURES].head(3) if example else None,
        )


def logistic(frame: pd.DataFrame) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame[FEATURES], frame["churned"])


def test_evaluation_is_stored_once_with_lineage_and_audit(any_workspace: Workspace) -> None:
    train, holdout = churn(), churn(seed=1)
    data = cauce.data.register("customers_holdout", holdout)
    version = register_model(logistic(train), train)

    first = evaluate("models:/churn/1", "customers_holdout@1", label="churned")
    assert first.model_uri == "models:/churn/1" and first.dataset == "customers_holdout@1"
    assert first.dataset_version_id == data.id and first.model_version_id == version.id
    assert first.rows == 300 and first.task == "classification"
    assert set(first.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc"}

    # The same version, dataset version and label: the stored row, by alias, by name, by object.
    cauce.models.set_alias("churn", "champion", 1)
    again = evaluate("models:/churn@champion", data, label="churned")
    assert again == first
    assert evaluate("models:/churn", "customers_holdout", label="churned") == first
    assert row_count(server_side(any_workspace), "model_evaluations") == 1

    assert get_evaluation("models:/churn/1", data, label="churned") == first
    assert get_evaluation("models:/churn/1", data, label="spend") is None
    assert evaluations("models:/churn/1") == [first]

    # Lineage: dataset version → model version, "evaluated_on".
    graph = walk(server_side(any_workspace), "model_version", version.id, "upstream")
    assert [
        (e.src.id, e.dst.id, e.relation)
        for e in graph.edges
        if e.relation not in ("produced", "packaged_as", "logged")
    ] == [(data.id, version.id, "evaluated_on")]
    # One audit event, for the one evaluation stored.
    events = audit.events(server_side(any_workspace), action="model_evaluation.create")
    assert len(events) == 1
    assert events[0].entity_id == first.id
    assert events[0].after is not None
    assert events[0].after["dataset_version"] == "customers_holdout@1"
    assert events[0].after["metrics"]["roc_auc"] == pytest.approx(first.metrics["roc_auc"])

    # Another label is another evaluation (here a numeric one: a regression).
    other = evaluate("models:/churn/1", data, label="spend")
    assert other.id != first.id and set(other.metrics) == {"mae", "rmse", "r2"}
    assert [e.label for e in evaluations("models:/churn/1")] == ["churned", "spend"]


def test_binary_metrics_match_sklearn(workspace: Workspace) -> None:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    train, holdout = churn(), churn(seed=1)
    cauce.data.register("customers_holdout", holdout)
    model = logistic(train)
    register_model(model, train)

    result = evaluate("models:/churn/1", "customers_holdout", label="churned")
    x, y = holdout[FEATURES], holdout["churned"]
    predicted = model.predict(x)
    assert result.metrics == pytest.approx(
        {
            "accuracy": accuracy_score(y, predicted),
            "precision": precision_score(y, predicted),
            "recall": recall_score(y, predicted),
            "f1": f1_score(y, predicted),
            "roc_auc": roc_auc_score(y, model.predict_proba(x)[:, 1]),
        }
    )
    assert 0.7 < result.metrics["roc_auc"] < 1.0


def test_text_and_boolean_labels_are_classes(workspace: Workspace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import precision_score, roc_auc_score

    frame = churn()
    text = frame.assign(churned=frame["churned"].map({0: "no", 1: "yes"}))
    model = LogisticRegression().fit(text[FEATURES], text["churned"])
    cauce.data.register("text_labels", text)
    register_model(model, text)
    result = evaluate("models:/churn/1", "text_labels", label="churned")
    # The positive class of two text values is the larger one: "yes".
    assert result.metrics["precision"] == pytest.approx(
        precision_score(text["churned"], model.predict(text[FEATURES]), pos_label="yes")
    )
    proba = model.predict_proba(text[FEATURES])[:, list(model.classes_).index("yes")]
    assert result.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(text["churned"] == "yes", proba)
    )

    flags = frame.assign(churned=frame["churned"].astype(bool))
    flag_model = LogisticRegression().fit(flags[FEATURES], flags["churned"])
    cauce.data.register("bool_labels", flags)
    register_model(flag_model, flags)
    assert evaluate("models:/churn/2", "bool_labels", label="churned").task == "classification"


def test_multiclass_labels_get_macro_averages(workspace: Workspace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    frame = churn()
    tiers = frame.assign(churned=pd.cut(frame["charges"], 3, labels=["low", "mid", "high"]))
    tiers["churned"] = tiers["churned"].astype(str)
    model = LogisticRegression(max_iter=500).fit(tiers[FEATURES], tiers["churned"])
    cauce.data.register("tiers", tiers)
    register_model(model, tiers)
    result = evaluate("models:/churn/1", "tiers", label="churned")
    expected = f1_score(tiers["churned"], model.predict(tiers[FEATURES]), average="macro")
    assert result.metrics["f1"] == pytest.approx(expected)
    assert 0.5 < result.metrics["roc_auc"] <= 1.0


def test_numeric_labels_are_a_regression(workspace: Workspace) -> None:
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    frame = churn()
    spend = frame.assign(spend=frame["charges"] * 12 + frame["age"] * 0.5)[["age", "spend"]]
    model = LinearRegression().fit(spend[["age"]], spend["spend"])
    with cauce.start_run(experiment="spend"):
        cauce.log_model(model, "model", registered_model="spend", input_example=spend[["age"]][:3])
    cauce.data.register("spend", spend)
    result = evaluate("models:/spend/1", "spend", label="spend")
    predicted = model.predict(spend[["age"]])
    assert result.task == "regression"
    assert result.metrics == pytest.approx(
        {
            "mae": mean_absolute_error(spend["spend"], predicted),
            "rmse": math.sqrt(mean_squared_error(spend["spend"], predicted)),
            "r2": r2_score(spend["spend"], predicted),
        }
    )
    assert lower_is_better("rmse") and lower_is_better("mae") and lower_is_better("val_loss")
    assert not lower_is_better("r2") and not lower_is_better("roc_auc")


def test_extra_columns_and_missing_labels(workspace: Workspace) -> None:
    """Columns the model was not trained on (ids) are left out, with or without a signature;
    rows without a label are not scored."""
    train = churn()
    holdout = churn(seed=1)
    holdout.loc[:9, "churned"] = None  # ten rows not labelled yet
    cauce.data.register("customers_holdout", holdout)
    register_model(logistic(train), train)
    register_model(logistic(train), train, example=False)
    with_signature = evaluate("models:/churn/1", "customers_holdout", label="churned")
    without = evaluate("models:/churn/2", "customers_holdout", label="churned")
    assert with_signature.rows == without.rows == 290
    assert with_signature.metrics == without.metrics


def test_bad_input_is_named(workspace: Workspace) -> None:
    train = churn()
    cauce.data.register("customers_holdout", churn(seed=1))
    register_model(logistic(train), train)
    with pytest.raises(InvalidInput, match="label column 'churn' is not in dataset version") as exc:
        evaluate("models:/churn/1", "customers_holdout", label="churn")
    assert exc.value.details["field"] == "label"
    with pytest.raises(InvalidInput, match="'age' is one of the model's input columns"):
        evaluate("models:/churn/1", "customers_holdout", label="age")
    with pytest.raises(NotFound, match="model 'nope' does not exist"):
        evaluate("models:/nope/1", "customers_holdout", label="churned")
    with pytest.raises(NotFound, match="has no version 7"):
        evaluate("models:/churn/7", "customers_holdout", label="churned")
    with pytest.raises(NotFound, match="'missing@2' does not exist"):
        evaluate("models:/churn/1", "missing@2", label="churned")
    with pytest.raises(InvalidInput, match="names a run's model"):
        evaluate("runs:/abc/model", "customers_holdout", label="churned")
    with pytest.raises(InvalidInput, match="prediction='score' names an output column"):
        evaluate("models:/churn/1", "customers_holdout", label="churned", prediction="score")
    assert evaluations("models:/churn/1") == []


# -- positive class and average: cauce.stats' rule, part of an evaluation's identity ----------


def test_positive_and_average_are_chosen_and_stored_apart(any_workspace: Workspace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, precision_score, roc_auc_score

    frame = churn()
    text = frame.assign(churned=frame["churned"].map({0: "no", 1: "yes"}))
    model = LogisticRegression().fit(text[FEATURES], text["churned"])
    cauce.data.register("text_labels", text)
    register_model(model, text)
    truth, predicted = text["churned"], model.predict(text[FEATURES])
    proba = model.predict_proba(text[FEATURES])

    default = evaluate("models:/churn/1", "text_labels", label="churned")
    named = evaluate("models:/churn/1", "text_labels", label="churned", positive="no")
    macro = evaluate("models:/churn/1", "text_labels", label="churned", average="macro")
    # each says the rule it counted by: the default is the greater of the model's classes
    assert (default.positive, default.average) == ("yes", "binary")
    assert (named.positive, named.average) == ("no", "binary")
    assert (macro.positive, macro.average) == (None, "macro")
    assert len({default.id, named.id, macro.id}) == 3
    assert named.metrics["precision"] == pytest.approx(
        precision_score(truth, predicted, pos_label="no")
    )
    assert named.metrics["roc_auc"] == pytest.approx(roc_auc_score(truth == "no", proba[:, 0]))
    assert macro.metrics["f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert default.metrics["precision"] != pytest.approx(named.metrics["precision"])

    # Asked again, each is the stored one; naming the default's rule is the default's evaluation.
    again = evaluate("models:/churn/1", "text_labels", label="churned", positive="no")
    assert again.id == named.id
    spelled = evaluate("models:/churn/1", "text_labels", label="churned", positive="yes")
    assert spelled.id == default.id
    found = get_evaluation("models:/churn/1", "text_labels", label="churned", average="macro")
    assert found is not None and found.id == macro.id
    found = get_evaluation("models:/churn/1", "text_labels", label="churned", positive="yes")
    assert found is not None and found.id == default.id
    assert (
        get_evaluation("models:/churn/1", "text_labels", label="churned", average="micro") is None
    )
    assert [e.id for e in evaluations("models:/churn/1")] == [default.id, named.id, macro.id]
    assert named.to_dict()["positive"] == "no"
    [event] = [
        e for e in audit.events(server_side(any_workspace), action="model_evaluation.create")
        if e.entity_id == named.id
    ]  # fmt: skip
    assert event.after["positive"] == "no" and event.after["average"] == "binary"


def test_true_1_and_1_0_name_one_class_and_one_evaluation(any_workspace: Workspace) -> None:
    from sklearn.metrics import precision_score

    frame = churn()
    cauce.data.register("holdout", frame)
    model = logistic(frame)
    register_model(model, frame)
    first = evaluate("models:/churn/1", "holdout", label="churned", positive=True)
    for positive in (1, 1.0, "1", None):
        again = evaluate("models:/churn/1", "holdout", label="churned", positive=positive)
        assert again.id == first.id, positive
    assert (first.positive, first.average) == ("1", "binary")
    assert row_count(server_side(any_workspace), "model_evaluations") == 1
    assert first.metrics["precision"] == pytest.approx(
        precision_score(frame["churned"], model.predict(frame[FEATURES]), pos_label=1)
    )
    # 0 is another class, another evaluation
    zero = evaluate("models:/churn/1", "holdout", label="churned", positive=False)
    assert zero.id != first.id and zero.positive == "0"
    assert evaluate("models:/churn/1", "holdout", label="churned", positive=0.0).id == zero.id


def test_the_default_positive_comes_from_the_models_classes_not_the_rows(
    workspace: Workspace,
) -> None:
    """A holdout that holds one class keeps the positive class of the model's two."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, precision_score, recall_score

    frame = churn()
    text = frame.assign(churned=frame["churned"].map({0: "no", 1: "yes"}))
    model = LogisticRegression().fit(text[FEATURES], text["churned"])
    register_model(model, text)
    stayed = text[text["churned"] == "no"]
    cauce.data.register("stayed", stayed)
    result = evaluate("models:/churn/1", "stayed", label="churned")
    assert (result.positive, result.average) == ("yes", "binary")
    truth, predicted = stayed["churned"], model.predict(stayed[FEATURES])
    assert "yes" in set(predicted)  # the model is wrong on some rows: precision is not 0/0
    kw: dict[str, Any] = {"pos_label": "yes", "labels": ["no", "yes"], "zero_division": 0}
    assert result.metrics == pytest.approx(
        {
            "accuracy": float((truth == predicted).mean()),
            "precision": precision_score(truth, predicted, **kw),
            "recall": recall_score(truth, predicted, **kw),
            "f1": f1_score(truth, predicted, **kw),
        }
    )
    # one class: no ROC AUC, and the evaluation says why
    assert "roc_auc" not in result.metrics
    assert result.not_computed == {"roc_auc": stats.undefined("roc_auc")}
    assert evaluations("models:/churn/1")[0].not_computed == result.not_computed


def test_roc_auc_needs_the_models_probabilities_and_says_so(any_workspace: Workspace) -> None:
    from sklearn.linear_model import RidgeClassifier
    from sklearn.metrics import recall_score

    frame = churn()
    cauce.data.register("holdout", frame)
    model = RidgeClassifier().fit(frame[FEATURES], frame["churned"])  # no predict_proba
    register_model(model, frame)
    result = evaluate("models:/churn/1", "holdout", label="churned")
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1"}
    assert result.metrics["recall"] == pytest.approx(
        recall_score(frame["churned"], model.predict(frame[FEATURES]))
    )
    reason = result.not_computed["roc_auc"]
    assert reason.startswith(stats.NO_SCORE) and "predict_proba" in reason
    [stored] = evaluations("models:/churn/1")
    assert stored == result  # the reason is stored with the evaluation
    [event] = audit.events(server_side(any_workspace), action="model_evaluation.create")
    assert event.after is not None and event.after["not_computed"] == {"roc_auc": reason}


def test_without_the_models_classes_the_labels_type_decides(workspace: Workspace) -> None:
    """A model without ``classes_`` (a regressor scoring 1/2 labels): positive 1, scikit-learn's
    default, not the greater class the rows happen to hold."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import precision_score

    frame = churn().assign(churned=lambda f: f["churned"] + 1)
    model = LinearRegression().fit(frame[FEATURES], frame["churned"])
    register_model(model, frame)
    cauce.data.register("holdout", frame)
    result = evaluate("models:/churn/1", "holdout", label="churned")
    assert (result.positive, result.average) == ("1", "binary")
    predicted = model.predict(frame[FEATURES]).round().astype(int)
    assert result.metrics["precision"] == pytest.approx(
        precision_score(frame["churned"], predicted, labels=[1], average="micro")
    )
    assert result.not_computed["roc_auc"].startswith(stats.NO_SCORE)


def test_evaluations_stored_before_the_rule_was_the_key_are_still_found(
    store_workspace: Workspace,
) -> None:
    """Rows stored under the rule as asked for ('' for the defaults, the positive as typed) are
    what the same request finds: nothing stored is scored again."""
    from sqlalchemy import update

    from cauce.store.schema import model_evaluations

    frame = churn()
    cauce.data.register("holdout", frame)
    register_model(logistic(frame), frame)
    default = evaluate("models:/churn/1", "holdout", label="churned")
    typed = evaluate("models:/churn/1", "holdout", label="churned", positive=0)
    e = model_evaluations.c
    with store_workspace.store.write() as conn:  # as 0008 stored them: the rule as asked for
        conn.execute(
            update(model_evaluations).where(e.id == default.id).values(positive="", average="")
        )
        conn.execute(
            update(model_evaluations).where(e.id == typed.id).values(positive="0.0", average="")
        )
    assert evaluate("models:/churn/1", "holdout", label="churned").id == default.id
    assert evaluate("models:/churn/1", "holdout", label="churned", positive=0.0).id == typed.id
    assert row_count(store_workspace, "model_evaluations") == 2


@pytest.mark.parametrize(
    ("rule", "field", "words"),
    [
        ({"positive": "maybe"}, "positive", "positive label 'maybe' is not one of the labels"),
        ({"positive": "yes", "average": "macro"}, "positive", "applies to average binary"),
        ({"average": "samples"}, "average", "average must be one of binary, micro, macro"),
        ({"positive": ["yes"]}, "positive", "a class label is non-empty text, a number or"),
        ({"positive": ""}, "positive", "a class label is non-empty text"),
    ],
)
def test_a_rule_that_cannot_apply_is_refused_naming_the_field(
    workspace: Workspace, rule: dict[str, Any], field: str, words: str
) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = churn()
    text = frame.assign(churned=frame["churned"].map({0: "no", 1: "yes"}))
    register_model(LogisticRegression().fit(text[FEATURES], text["churned"]), text)
    cauce.data.register("text_labels", text)
    with pytest.raises(InvalidInput, match=words) as caught:
        evaluate("models:/churn/1", "text_labels", label="churned", **rule)
    assert caught.value.details["field"] == field
    assert evaluations("models:/churn/1") == []  # nothing stored


def test_positive_on_a_regression_is_refused(workspace: Workspace) -> None:
    from sklearn.linear_model import LinearRegression

    frame = churn()[["age", "spend"]]
    with cauce.start_run(experiment="spend"):
        cauce.log_model(
            LinearRegression().fit(frame[["age"]], frame["spend"]),
            "model",
            registered_model="spend",
            input_example=frame[["age"]][:3],
        )
    cauce.data.register("spend", frame)
    with pytest.raises(InvalidInput, match="apply to classification labels") as caught:
        evaluate("models:/spend/1", "spend", label="spend", positive=1)
    assert caught.value.details["field"] == "positive"


def test_multiclass_with_a_positive_class_against_the_others(workspace: Workspace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score, roc_auc_score

    frame = churn()
    tiers = frame.assign(churned=pd.cut(frame["charges"], 3, labels=["low", "mid", "high"]))
    tiers["churned"] = tiers["churned"].astype(str)
    model = LogisticRegression(max_iter=500).fit(tiers[FEATURES], tiers["churned"])
    cauce.data.register("tiers", tiers)
    register_model(model, tiers)
    result = evaluate("models:/churn/1", "tiers", label="churned", positive="high")
    truth, predicted = tiers["churned"], model.predict(tiers[FEATURES])
    assert result.metrics["recall"] == pytest.approx(
        recall_score(truth == "high", predicted == "high")
    )
    column = list(model.classes_).index("high")
    assert result.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(truth == "high", model.predict_proba(tiers[FEATURES])[:, column])
    )
    weighted = evaluate("models:/churn/1", "tiers", label="churned", average="weighted")
    assert weighted.metrics["roc_auc"] == pytest.approx(
        roc_auc_score(
            truth,
            model.predict_proba(tiers[FEATURES]),
            multi_class="ovr",
            average="weighted",
            labels=list(model.classes_),
        )
    )


def test_migration_0008_keeps_evaluations_without_a_rule_both_ways(
    store_workspace: Workspace,
) -> None:
    """Down to 0005 and up again: the evaluations without a rule (regressions) stay, with their
    ids; those that counted by a positive class or an average cannot fit 0005's key and are
    scored again when asked for."""
    from alembic import command
    from sqlalchemy import create_engine

    from cauce.store.migrate import alembic_config

    frame = churn()
    cauce.data.register("holdout", frame)
    register_model(logistic(frame), frame)
    spend = evaluate("models:/churn/1", "holdout", label="spend")
    default = evaluate("models:/churn/1", "holdout", label="churned")
    engine = create_engine(store_workspace.settings.db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0005")
            columns = {c["name"] for c in inspect(conn).get_columns("model_evaluations")}
            assert "positive" not in columns and "average" not in columns
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    finally:
        engine.dispose()
    kept = evaluate("models:/churn/1", "holdout", label="spend")
    assert (kept.id, kept.metrics, kept.positive, kept.average) == (
        spend.id, spend.metrics, None, None
    )  # fmt: skip
    assert get_evaluation("models:/churn/1", "holdout", label="churned") is None
    again = evaluate("models:/churn/1", "holdout", label="churned")
    assert again.id != default.id and again.metrics == default.metrics
