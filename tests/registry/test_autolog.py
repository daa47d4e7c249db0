"""``cauce.autolog()``: real scikit-learn fits recorded as runs, locally and through a server."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import cauce
from cauce.errors import InvalidInput
from cauce.lineage.graph import walk
from cauce.registry import models
from cauce.tracking.entities import Run
from cauce.workspace import Workspace


@pytest.fixture(autouse=True)
def autolog_off() -> Iterator[None]:
    yield
    cauce.autolog(disable=True)


@pytest.fixture
def churn() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=300, n_features=4, random_state=0)
    return pd.DataFrame(X, columns=["age", "charges", "tenure", "calls"]), y


def runs_named(name: str) -> list[Run]:
    return [r for r in cauce.search_runs() if r.info.run_name == name]


def test_a_fit_is_a_run_with_its_params_training_metrics_and_model(
    workspace: Workspace, churn: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = churn
    cauce.autolog(registered_model="churn")
    model = LogisticRegression(C=0.5).fit(X, y)

    [run] = runs_named("LogisticRegression")
    assert run.info.status == "FINISHED" and cauce.active_run() is None
    last = cauce.last_active_run()  # how a script finds the run a fit made
    assert last is not None and last.info.run_id == run.info.run_id
    assert run.data.params["C"] == "0.5" and run.data.params["max_iter"] == "100"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    predicted, scores = model.predict(X), model.predict_proba(X)[:, 1]
    expected = {
        "training_accuracy": skm.accuracy_score(y, predicted),
        "training_precision": skm.precision_score(y, predicted),
        "training_recall": skm.recall_score(y, predicted),
        "training_f1": skm.f1_score(y, predicted),
        "training_roc_auc": skm.roc_auc_score(y, scores),
        "training_score": model.score(X, y),
    }
    assert run.data.metrics == pytest.approx(expected)
    loaded = models.load("models:/churn/1")
    assert (loaded.predict(X.head(20)) == predicted[:20]).all()
    assert models.get_version("churn", 1).run_id == run.info.run_id
    signature = models.get_version("churn", 1).signature
    assert signature is not None
    assert [c["name"] for c in signature["inputs"]["columns"]] == list(X.columns)


def test_data_loaded_from_a_dataset_version_is_the_fits_training_input(
    workspace: Workspace, churn: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = churn
    cauce.data.register("churn", X.assign(churned=y))
    other = cauce.data.register("calls", X[["calls"]].assign(region="north"))
    table = cauce.data.load("churn@1")
    X_train, _, y_train, _ = train_test_split(
        table.drop(columns="churned"), table["churned"], random_state=0
    )
    cauce.autolog(registered_model="churn")
    LogisticRegression().fit(X_train, y_train)  # a split of the loaded frame

    [run] = runs_named("LogisticRegression")
    assert [(i.dataset, i.version, i.context) for i in run.inputs.dataset_inputs] == [
        ("churn", 1, "training")
    ]
    version = models.get_version("churn", 1)
    upstream = walk(workspace, "model_version", version.id, "upstream")
    assert ("dataset_version", "dataset churn v1") in {(n.kind, n.label) for n in upstream.nodes}

    joined = table.join(cauce.data.load(other)[["region"]])  # two versions: pandas drops both
    LinearRegression().fit(joined[["age", "tenure"]], joined["charges"])
    assert runs_named("LinearRegression")[0].inputs.dataset_inputs == []
    cauce.autolog(log_datasets=False, log_models=False)
    LogisticRegression().fit(X_train, y_train)
    assert sorted(len(r.inputs.dataset_inputs) for r in runs_named("LogisticRegression")) == [0, 1]

    # A version made from a loaded frame does not carry the name of the one it was made from.
    cauce.data.register("features", table.assign(ratio=table["charges"] / 2))
    stored = cauce.data.get_version("features")
    assert pd.read_parquet(io.BytesIO(workspace.artifacts.read_bytes(stored.sha256))).attrs == {}


def test_a_regressor_is_measured_with_regression_metrics(workspace: Workspace) -> None:
    X, y = make_regression(n_samples=200, n_features=3, noise=5.0, random_state=1)
    cauce.autolog(log_models=False)
    model = LinearRegression().fit(X, y)
    [run] = runs_named("LinearRegression")
    predicted = model.predict(X)
    assert run.data.metrics == pytest.approx(
        {
            "training_mae": skm.mean_absolute_error(y, predicted),
            "training_rmse": math.sqrt(skm.mean_squared_error(y, predicted)),
            "training_r2": skm.r2_score(y, predicted),
            "training_score": model.score(X, y),
        }
    )
    assert cauce.list_artifacts(run.info.run_id) == []  # log_models=False


def test_only_the_outermost_fit_is_recorded_and_a_search_keeps_its_best_candidates(
    workspace: Workspace, churn: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = churn
    cauce.autolog(log_models=False, max_tuning_runs=2)
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression()),
        {"logisticregression__C": [0.001, 0.1, 10.0]},
        cv=3,
    )
    with cauce.start_run(experiment="tuning", run_name="search") as parent:
        search.fit(X, y)
    recorded = cauce.search_runs()
    children = [r for r in recorded if r.info.parent_run_id == parent.run_id]
    assert len(recorded) == 3 and len(children) == 2  # no run for a step or a candidate's fit
    [run] = [r for r in recorded if r.info.run_id == parent.run_id]
    best = search.best_params_["logisticregression__C"]
    assert run.data.params["best_logisticregression__C"] == str(best)
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert run.data.params["estimator__steps"].startswith("[('standardscaler'")
    ranked = np.argsort(search.cv_results_["rank_test_score"], kind="stable")[:2]
    by_c = {r.data.params["logisticregression__C"]: r.data.metrics for r in children}
    for index in ranked:
        c = str(search.cv_results_["params"][index]["logisticregression__C"])
        assert by_c[c]["mean_test_score"] == pytest.approx(
            search.cv_results_["mean_test_score"][index]
        )
        assert "std_test_score" in by_c[c] and "mean_fit_time" not in by_c[c]

    RandomForestClassifier(n_estimators=6, n_jobs=2, random_state=0).fit(X, y)
    assert len(runs_named("RandomForestClassifier")) == 1  # its trees fit in threads, inside it


def test_a_failing_fit_fails_its_run_and_still_raises(workspace: Workspace) -> None:
    cauce.autolog(log_models=False)
    with pytest.raises(ValueError, match="class"):
        LogisticRegression().fit([[0.0], [1.0]], [1, 1])  # one class: sklearn refuses
    [run] = runs_named("LogisticRegression")
    assert run.info.status == "FAILED"


def test_what_cannot_be_recorded_is_a_warning_never_a_failed_fit(
    workspace: Workspace, churn: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = churn
    cauce.autolog(log_models=False)
    with cauce.start_run(run_name="two fits"):
        LogisticRegression(C=1.0).fit(X, y)
        with pytest.warns(UserWarning, match="params not recorded: .*cannot change"):
            refit: Any = LogisticRegression(C=2.0).fit(X, y)
    assert refit.coef_.shape == (1, 4)
    [run] = runs_named("two fits")
    assert run.data.params["C"] == "1.0" and "training_accuracy" in run.data.metrics


def test_disabled_autolog_restores_scikit_learns_own_methods(
    workspace: Workspace, churn: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = churn
    original = LogisticRegression.fit
    cauce.autolog()
    assert LogisticRegression.fit is not original
    cauce.autolog(disable=True)
    assert LogisticRegression.fit is original
    LogisticRegression().fit(X, y)
    assert cauce.search_runs() == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [({"max_tuning_runs": -1}, "max_tuning_runs"), ({"max_tuning_runs": 1.5}, "max_tuning_runs")],
)
def test_bad_settings_are_refused_naming_the_field(
    workspace: Workspace, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        cauce.autolog(**arguments)
    assert refused.value.details["field"] == field
    with pytest.raises(InvalidInput, match="'a/b'"):
        cauce.autolog(registered_model="a/b")
