"""Prediction drift and model performance on a served endpoint, checked against SciPy/sklearn.

One ``cauce endpoints serve`` process serves the module (starting processes is what costs time),
with four deployments of endpoint ``churn``, each reached with the ``cauce-deployment`` header:

- ``clf``: the classifier ``churn@champion`` (LogisticRegression, answers a class);
- ``reg``: the regressor ``spend`` (Ridge, answers a number);
- ``proba``: ``scored``, a Python model answering a table: the class and its probability;
- ``quiet``: the classifier again, collecting requests but not answers.

Each test sends its own traffic (its own ``x-request-id`` values) and runs the monitor over a
window holding exactly that traffic; the expected values come from the model scored locally on
the reference and on the rows sent, and from ``scipy.spatial.distance`` / ``sklearn.metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cauce
from builders import customers
from cauce.monitoring.monitors import PREDICTION_SAMPLE, run_monitor
from cauce.registry.models import set_alias
from cauce.serving.collector import read_window
from cauce.specs import apply
from cauce.store import now_ms
from cauce.workspace import Workspace
from clitools import wait_until
from served import Served

pytestmark = pytest.mark.slow

FEATURES = ["charges", "tenure"]
DEPLOYMENTS = ["clf", "reg", "proba", "quiet"]
ENDPOINT = """\
kind: Endpoint
name: churn
traffic: {clf: 100}
---
kind: Deployment
endpoint: churn
name: clf
model: models:/churn@champion
collect: {}
---
kind: Deployment
endpoint: churn
name: reg
model: models:/spend/1
collect: {}
---
kind: Deployment
endpoint: churn
name: proba
model: models:/scored/1
collect: {}
---
kind: Deployment
endpoint: churn
name: quiet
model: models:/churn/1
collect: {responses: false}
"""


def truth(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """What really happened to these customers: churned (noisy in charges) and spend."""
    rng = np.random.default_rng(seed)
    churned = (frame["charges"] + rng.normal(0, 10, len(frame)) > 75).astype(int)
    spend = 12 * frame["charges"] + 3 * frame["tenure"] + rng.normal(0, 30, len(frame))
    return pd.DataFrame({"churned": churned, "spend": spend})


def scoring_table(classifier: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A Python model answering the class and the probability of churn, as a table.

    A closure, so that cloudpickle saves it by value and the deployment server can load it.
    """

    def score(data: pd.DataFrame) -> pd.DataFrame:
        frame = data[["charges", "tenure"]]
        return pd.DataFrame(
            {
                "prediction": classifier.predict(frame),
                "probability": classifier.predict_proba(frame)[:, 1],
            }
        )

    return score


@dataclass
class Models:
    training: pd.DataFrame  # the reference: features and the truth
    classifier: Any
    regressor: Any
    scored: Callable[[pd.DataFrame], pd.DataFrame]


@dataclass
class Batch:
    """Traffic sent to one deployment: the rows, per request, and the window that holds it."""

    deployment: str
    ids: list[str]
    frames: list[pd.DataFrame]
    answers: list[Any]  # the "predictions" of each reply
    start: int  # every record's timestamp is > start ...
    end: int  # ... and <= end

    @property
    def rows(self) -> pd.DataFrame:
        return pd.concat(self.frames, ignore_index=True)

    def keys(self) -> pd.DataFrame:
        """(correlation_id, row) of every row sent, in order."""
        sizes = [len(f) for f in self.frames]
        return pd.DataFrame(
            {
                "correlation_id": np.repeat(self.ids, sizes),
                "row": np.concatenate([np.arange(n) for n in sizes]),
            }
        )


class Churn(Served):
    """The served ``churn`` endpoint, scored in batches whose collected records it waits for."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws, "churn")

    def predict(self, deployment: str, frame: pd.DataFrame, request_id: str) -> Any:
        """The predictions ``deployment`` answers for ``frame``."""
        rows = [
            {"charges": float(c), "tenure": int(t)}
            for c, t in zip(frame["charges"], frame["tenure"], strict=True)
        ]
        reply = self.score(rows, x_request_id=request_id, cauce_deployment=deployment)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-request-id"] == request_id
        return reply.json()["predictions"]

    def send(self, deployment: str, frame: pd.DataFrame, prefix: str, size: int = 25) -> Batch:
        """``frame`` in requests of ``size`` rows; returns once the collector has written them."""
        time.sleep(0.005)  # the previous batch's window ends strictly before this one starts
        start = now_ms() - 1
        frames = [
            frame.iloc[i : i + size].reset_index(drop=True) for i in range(0, len(frame), size)
        ]
        ids = [f"{prefix}-{i}" for i in range(len(frames))]
        answers = [self.predict(deployment, f, i) for f, i in zip(frames, ids, strict=True)]
        end = now_ms()
        batch = Batch(deployment, ids, frames, answers, start, end)
        collections = ["model_inputs"] + ([] if deployment == "quiet" else ["model_outputs"])
        for collection in collections:
            wait_until(lambda c=collection: len(self.collected(batch, c)) == len(frame))
        time.sleep(0.005)
        return batch

    def collected(self, batch: Batch, collection: str) -> pd.DataFrame:
        root = self.ws.settings.state_dir / "collector"
        frame = read_window(root, "churn", batch.deployment, collection, batch.start, batch.end)
        return frame if frame.empty else frame[frame["correlation_id"].isin(batch.ids)]


# -- the served endpoint ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(module_workspace: Workspace) -> Models:
    """Three models trained on ``customers@1``, each run logging it as its training data."""
    from sklearn.linear_model import LogisticRegression, Ridge

    features = customers(1000, seed=0)
    training = pd.concat([features, truth(features, seed=100)], axis=1)
    version = cauce.data.register("customers", training)
    example = features.head(5)
    classifier = LogisticRegression(max_iter=500).fit(features, training["churned"])
    regressor = Ridge().fit(features, training["spend"])
    scored = scoring_table(classifier)
    for name, model in (("churn", classifier), ("spend", regressor), ("scored", scored)):
        with cauce.start_run(experiment=name):
            cauce.log_input(version, context="training")
            cauce.log_model(model, "model", registered_model=name, input_example=example)
    set_alias("churn", "champion", 1)
    return Models(training, classifier, regressor, scored)


@pytest.fixture(scope="module")
def served(
    module_workspace: Workspace, models: Models, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Churn]:
    spec = tmp_path_factory.mktemp("spec") / "churn.yaml"
    spec.write_text(ENDPOINT)
    apply(spec)
    server = Churn(module_workspace)
    try:
        server.wait_ready(DEPLOYMENTS, timeout=180)
        for deployment in DEPLOYMENTS:  # a worker's first call is slow: not what tests time
            server.predict(deployment, customers(1, seed=99), f"warm-{deployment}")
        yield server
    finally:
        server.kill()


def monitor(
    name: str, batch: Batch, reference: str, *signals: dict[str, Any], **target: Any
) -> str:
    """Apply monitor ``name`` over ``batch``'s window (one deployment of churn); its name."""
    apply(
        {
            "kind": "Monitor",
            "name": name,
            "target": {"endpoint": "churn", "deployments": [batch.deployment], **target},
            "reference": {"model": reference},
            "window": {"size": f"{batch.end - batch.start}ms"},
            "signals": list(signals),
        }
    )
    return name


def values_of(run: Any, signal: str) -> dict[str, dict[str, Any]]:
    """A run's values of one signal, by feature."""
    return {v["feature"]: v for v in run.values if v["signal"] == signal}


def class_counts(labels: Any, classes: list[str]) -> np.ndarray:
    series = pd.Series(np.asarray(labels)).astype(str)
    return series.value_counts().reindex(classes, fill_value=0).to_numpy(dtype=float)


def flat(answers: list[Any]) -> list[Any]:
    return [a for answer in answers for a in answer]


# -- prediction drift -------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["jensen_shannon", "chebyshev"])
def test_prediction_drift_of_classes_passes_on_like_traffic_and_breaches_on_shifted(
    served: Churn, models: Models, metric: str
) -> None:
    from scipy.spatial.distance import chebyshev, jensenshannon

    reference_rows = models.training[FEATURES]
    assert len(reference_rows) <= PREDICTION_SAMPLE  # so the profile scores all of them
    on_reference = models.classifier.predict(reference_rows)
    signal = {"prediction_drift": {"metric": metric, "threshold": 0.1}}
    found = {}
    for kind, shift in (("like", 0.0), ("shifted", 30.0)):
        batch = served.send("clf", customers(400, seed=11, shift=shift), f"{metric}-{kind}")
        sent = models.classifier.predict(batch.rows)
        assert flat(batch.answers) == sent.tolist()  # the endpoint served this very model
        name = monitor(f"classes-{metric}", batch, "models:/churn@champion", signal)
        run = run_monitor(name, now=batch.end)
        assert run.rows == 400
        [value] = values_of(run, "prediction_drift").values()
        classes = ["0", "1"]
        p, q = class_counts(on_reference, classes), class_counts(sent, classes)
        if metric == "jensen_shannon":
            expected = float(jensenshannon(p, q, base=2))
        else:
            expected = float(chebyshev(p / p.sum(), q / q.sum()))
        assert value["feature"] == "prediction" and value["metric"] == metric
        assert value["value"] == pytest.approx(expected, abs=1e-12)
        distribution = value["details"]["distribution"]
        assert distribution["categories"] == classes
        assert distribution["reference"] == p.tolist() and distribution["current"] == q.tolist()
        assert value["threshold"] == 0.1
        found[kind] = (value, run)
    like, like_run = found["like"]
    assert like["outcome"] == "passed" and like["value"] < 0.1 and like_run.status == "ok"
    shifted, shifted_run = found["shifted"]
    assert shifted["outcome"] == "breached" and shifted["value"] > 0.1
    assert shifted_run.status == "alert" and shifted_run.alert is not None
    assert [b["signal"] for b in shifted_run.alert.breaches] == ["prediction_drift"]


def test_prediction_drift_of_a_regressor_is_normalized_wasserstein(
    served: Churn, models: Models
) -> None:
    from scipy.stats import wasserstein_distance

    on_reference = models.regressor.predict(models.training[FEATURES])
    # The metric is computed on the reference's 1000-bin grid: within one bin of the exact value.
    std = float(np.std(on_reference))
    resolution = (on_reference.max() - on_reference.min()) / 1000 / std
    signal = {"prediction_drift": {"metric": "normalized_wasserstein", "threshold": 0.1}}
    found = {}
    for kind, shift in (("like", 0.0), ("shifted", 30.0)):
        batch = served.send("reg", customers(400, seed=12, shift=shift), f"spend-{kind}")
        sent = models.regressor.predict(batch.rows)
        assert flat(batch.answers) == pytest.approx(sent.tolist())
        name = monitor("spend-drift", batch, "models:/spend/1", signal)
        run = run_monitor(name, now=batch.end)
        [value] = values_of(run, "prediction_drift").values()
        expected = wasserstein_distance(on_reference, sent) / std
        assert value["feature"] == "prediction" and value["metric"] == "normalized_wasserstein"
        assert value["value"] == pytest.approx(expected, abs=resolution)
        assert value["details"]["reference_count"] == 1000
        found[kind] = value
    assert found["like"]["outcome"] == "passed" and found["like"]["value"] < 0.1
    assert found["shifted"]["outcome"] == "breached" and found["shifted"]["value"] > 1.0


def test_a_model_answering_a_table_has_prediction_drift_per_column(
    served: Churn, models: Models
) -> None:
    """The reference's prediction columns are named like the collected answers' columns."""
    from scipy.spatial.distance import jensenshannon

    batch = served.send("proba", customers(300, seed=13), "table")
    answers = pd.DataFrame(flat(batch.answers))
    assert answers.columns.tolist() == ["prediction", "probability"]
    # 300 answers over 20 bins of probability: sampling noise alone reaches 0.1.
    signal = {"prediction_drift": {"metric": "jensen_shannon", "threshold": 0.2}}
    run = run_monitor(monitor("table-drift", batch, "models:/scored/1", signal), now=batch.end)
    found = values_of(run, "prediction_drift")
    assert set(found) == {"prediction", "probability"}
    on_reference = models.scored(models.training[FEATURES])
    p = class_counts(on_reference["prediction"], ["0", "1"])
    q = class_counts(answers["prediction"], ["0", "1"])
    assert found["prediction"]["value"] == pytest.approx(float(jensenshannon(p, q, base=2)))
    # The probability over the reference's drift bins (the end bins run to ±inf).
    probability = found["probability"]
    inner = probability["details"]["distribution"]["edges"][1:-1]
    p, q = (
        np.bincount(np.searchsorted(inner, values, side="right"), minlength=len(inner) + 1)
        for values in (on_reference["probability"], answers["probability"])
    )
    assert probability["details"]["distribution"]["reference"] == p.tolist()
    assert probability["details"]["distribution"]["current"] == q.tolist()
    assert probability["value"] == pytest.approx(float(jensenshannon(p, q, base=2)))
    assert (p.sum(), q.sum()) == (1000, 300)
    for value in found.values():
        assert value["outcome"] == "passed" and value["value"] < 0.2


def test_prediction_drift_without_answers_is_not_computed_with_the_reason(
    served: Churn, models: Models
) -> None:
    signal = {"prediction_drift": {"metric": "jensen_shannon", "threshold": 0.1}}
    # A deployment that collects requests only: inputs in the window, no answers.
    quiet = served.send("quiet", customers(100, seed=14), "quiet")
    run = run_monitor(monitor("quiet-drift", quiet, "models:/churn/1", signal), now=quiet.end)
    assert run.rows == 100 and run.status == "ok" and run.alert is None
    [value] = values_of(run, "prediction_drift").values()
    assert value["outcome"] == "not_computed" and value["value"] is None
    assert value["details"]["reason"] == "no predictions in the window"
    # A reference answering a column the deployment's answers lack: that column says so.
    clf = served.send("clf", customers(100, seed=15), "lacking")
    run = run_monitor(monitor("lacking-drift", clf, "models:/scored/1", signal), now=clf.end)
    found = values_of(run, "prediction_drift")
    assert found["prediction"]["outcome"] == "passed"
    assert found["probability"]["outcome"] == "not_computed"
    assert found["probability"]["value"] is None
    assert found["probability"]["details"]["reason"] == "the collected answers have no such column"
    # An empty window: nothing is judged.
    run = run_monitor("lacking-drift", now=clf.start - 60_000)
    assert run.status == "no_data" and run.rows == 0 and run.alert is None
    [value] = values_of(run, "prediction_drift").values()
    assert value["outcome"] == "not_computed" and value["value"] is None
    assert "fewer than min_rows 1" in value["details"]["reason"]


# -- model performance from delayed labels ----------------------------------------------------


def labels(name: str, batch: Batch, column: str, *, requests: int | None = None) -> pd.DataFrame:
    """Register the truth of the first ``requests`` requests of ``batch`` as dataset ``name``:
    one row per (correlation_id, row) with its ``label``."""
    keys = batch.keys()
    table = keys.assign(label=truth(batch.rows, seed=7)[column].to_numpy())
    if requests is not None:
        table = table[table["correlation_id"].isin(batch.ids[:requests])].reset_index(drop=True)
    cauce.data.register(name, table)
    return table


def performance(metric: str, dataset: str, **settings: Any) -> dict[str, Any]:
    return {"model_performance": {"metric": metric, "labels": {"dataset": dataset}, **settings}}


def test_accuracy_from_labels_equals_sklearn_and_counts_only_labelled_rows(
    served: Churn, models: Models
) -> None:
    from sklearn.metrics import accuracy_score

    batch = served.send("clf", customers(300, seed=16), "acc")  # 12 requests of 25 rows
    predicted = np.asarray(flat(batch.answers))
    every = labels("acc-labels", batch, "churned")
    spec = performance("accuracy", "acc-labels", min=0.95)
    run = run_monitor(monitor("acc", batch, "models:/churn@champion", spec), now=batch.end)
    value = values_of(run, "model_performance")["*"]
    assert value["value"] == pytest.approx(accuracy_score(every["label"], predicted))
    assert value["details"] == {"predictions": 300, "labelled": 300}
    assert value["outcome"] == "breached" and value["threshold"] == 0.95  # the labels are noisy

    # Labels for half the requests: only those rows count.
    half = labels("acc-half", batch, "churned", requests=6)
    spec = performance("accuracy", "acc-half", min=0.5)
    run = run_monitor(monitor("acc", batch, "models:/churn@champion", spec), now=batch.end)
    value = values_of(run, "model_performance")["*"]
    assert value["value"] == pytest.approx(accuracy_score(half["label"], predicted[:150]))
    assert value["details"] == {"predictions": 300, "labelled": 150}
    assert value["outcome"] == "passed"

    # Fewer labels than min_labels: not computed, with the count.
    spec = performance("accuracy", "acc-half", min=0.5, min_labels=200)
    run = run_monitor(monitor("acc", batch, "models:/churn@champion", spec), now=batch.end)
    value = values_of(run, "model_performance")["*"]
    assert value["outcome"] == "not_computed" and value["value"] is None
    assert value["details"]["reason"] == (
        "150 of 300 predictions in the window have a label, fewer than 200"
    )
    assert (value["details"]["predictions"], value["details"]["labelled"]) == (300, 150)
    assert run.status == "ok"


@pytest.mark.parametrize("metric", ["mae", "rmse", "r2"])
def test_regression_errors_from_labels_equal_sklearn(
    served: Churn, models: Models, metric: str
) -> None:
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

    batch = served.send("reg", customers(200, seed=17), f"err-{metric}")
    predicted = np.asarray(flat(batch.answers))
    table = labels(f"spend-labels-{metric}", batch, "spend")
    reference = {"mae": mean_absolute_error, "rmse": root_mean_squared_error, "r2": r2_score}
    expected = reference[metric](table["label"], predicted)
    assert expected > 0  # a useful model: max=expected / 2 breaches (r2 too, above its max)
    spec = performance(metric, f"spend-labels-{metric}", max=expected / 2)
    run = run_monitor(monitor(f"spend-{metric}", batch, "models:/spend/1", spec), now=batch.end)
    value = values_of(run, "model_performance")["*"]
    assert value["metric"] == metric
    assert value["value"] == pytest.approx(expected, rel=1e-9)
    assert value["details"] == {"predictions": 200, "labelled": 200}
    assert value["outcome"] == "breached" and run.status == "alert"


def test_roc_auc_uses_the_score_column(served: Churn, models: Models) -> None:
    from sklearn.metrics import roc_auc_score

    batch = served.send("proba", customers(300, seed=18), "auc")
    answers = pd.DataFrame(flat(batch.answers))
    table = labels("auc-labels", batch, "churned")
    spec = performance("roc_auc", "auc-labels", score="probability", min=0.5)
    run = run_monitor(monitor("auc", batch, "models:/scored/1", spec), now=batch.end)
    value = values_of(run, "model_performance")["*"]
    expected = roc_auc_score(table["label"], answers["probability"])
    assert value["value"] == pytest.approx(expected, rel=1e-9)
    assert value["outcome"] == "passed" and value["details"]["labelled"] == 300
    # Without a score column there is no ROC AUC (the hard predictions do not rank the rows),
    # as in an evaluation of a model without predict_proba: not computed, with the reason.
    spec = performance("roc_auc", "auc-labels", min=0.5)
    run = run_monitor(monitor("auc", batch, "models:/scored/1", spec), now=batch.end)
    hard = values_of(run, "model_performance")["*"]
    assert hard["value"] is None and hard["outcome"] == "not_computed"
    assert hard["details"]["reason"].startswith("roc_auc needs a score of the positive class")
    assert run.status == "ok"
