"""The real MLflow client against ``cauce server``'s app, served by uvicorn on loopback.

Each test serves the server's whole app (Cauce's API, MLflow's, the authentication gate) over
the test's workspace, points ``MLFLOW_TRACKING_URI`` at it and drives the ``mlflow`` package
unchanged; what it logged is then read back through Cauce's own SDK, and what Cauce logged
through MLflow's.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cauce.workspace import Workspace
from clitools import cauce as run_cli
from mlflow_client import error_code, mlflow_at

pytestmark = [
    # mlflow's own warnings (deprecations inside the package, pip hints) are not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


# -- experiments ----------------------------------------------------------------------------


def test_experiments_are_cauce_experiments(
    mlflow: Any, client: Any, any_workspace: Workspace
) -> None:
    import cauce.tracking.experiments as exps

    eid = client.create_experiment("churn", tags={"mlflow.note.content": "the churn model"})
    assert exps.get_experiment(eid).name == "churn"
    assert exps.get_experiment(eid).description == "the churn model"
    assert client.get_experiment(eid).name == "churn"
    assert client.get_experiment_by_name("churn").experiment_id == eid
    assert client.get_experiment_by_name("nope") is None
    with pytest.raises(mlflow.exceptions.MlflowException) as raised:
        client.create_experiment("churn")
    assert error_code(raised) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(mlflow.exceptions.MlflowException) as raised:
        client.get_experiment("0" * 32)
    assert error_code(raised) == "RESOURCE_DOES_NOT_EXIST"

    client.create_experiment("fraud")
    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'ch%'")]
    assert names == ["churn"]
    assert {e.name for e in mlflow.search_experiments()} >= {"churn", "fraud"}
    client.rename_experiment(eid, "churn-v2")
    assert exps.get_experiment(eid).name == "churn-v2"
    client.delete_experiment(eid)
    assert exps.get_experiment(eid).lifecycle_stage == "deleted"
    assert "churn-v2" not in {e.name for e in client.search_experiments()}
    client.restore_experiment(eid)
    assert exps.get_experiment(eid).lifecycle_stage == "active"
    # "0", MLflow's default experiment, is the workspace's default one.
    assert client.get_experiment("0").name == any_workspace.settings.experiment

    # Experiment tags are Cauce's; MLflow's note is the experiment's description.
    tagged = client.create_experiment("risk", tags={"team": "growth"})
    mlflow.set_experiment("risk")
    mlflow.set_experiment_tags({"project": "retention", "mlflow.note.content": "risk models"})
    assert exps.get_experiment("risk").tags == {"team": "growth", "project": "retention"}
    assert exps.get_experiment("risk").description == "risk models"
    assert client.get_experiment(tagged).tags == {
        "team": "growth",
        "project": "retention",
        "mlflow.note.content": "risk models",
    }
    found = client.search_experiments(filter_string="tags.team = 'growth'")
    assert [e.name for e in found] == ["risk"]
    client.delete_experiment_tag(tagged, "project")
    assert exps.get_experiment("risk").tags == {"team": "growth"}


# -- runs -----------------------------------------------------------------------------------


def test_runs_metrics_params_and_tags_are_cauce_rows(
    mlflow: Any, client: Any, any_workspace: Workspace
) -> None:
    import cauce
    from cauce.lineage.audit import events

    mlflow.set_experiment("churn")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("rmse", 0.9, step=1)
        mlflow.log_metric("rmse", 0.7, step=2)
        mlflow.log_metrics({"mae": 0.3, "r2": float("nan")}, step=2)
        mlflow.log_params({"l1": 0.1, "solver": "saga"})
        mlflow.set_tags({"team": "growth", "gone": "soon"})
        mlflow.delete_tag("gone")
        client.log_batch(
            run.info.run_id,
            metrics=[mlflow.entities.Metric("loss", v, 1000 + i, i) for i, v in enumerate([3, 2])],
            params=[mlflow.entities.Param("batch", "32")],
            tags=[mlflow.entities.RunTag("stage", "dev")],
        )
        with pytest.raises(mlflow.exceptions.MlflowException) as raised:
            mlflow.log_param("alpha", "0.6")
        assert error_code(raised) == "INVALID_PARAMETER_VALUE"
    run_id = run.info.run_id

    seen = cauce.get_run(run_id)
    assert seen.info.run_name == "first"
    assert seen.info.status == "FINISHED" and seen.info.end_time is not None
    assert seen.data.params == {"alpha": "0.5", "l1": "0.1", "solver": "saga", "batch": "32"}
    assert seen.data.metrics["rmse"] == 0.7 and seen.data.metrics["loss"] == 2
    assert seen.data.tags["team"] == "growth" and "gone" not in seen.data.tags
    assert seen.data.tags["stage"] == "dev"
    assert [(m.step, m.value) for m in cauce.get_metric_history(run_id, "rmse")] == [
        (1, 0.9),
        (2, 0.7),
    ]
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(0, 3, 1000), (1, 2, 1001)]
    got = client.get_run(run_id)
    assert got.data.metrics["rmse"] == 0.7 and got.data.params["alpha"] == "0.5"
    assert got.info.artifact_uri == f"mlflow-artifacts:/{got.info.experiment_id}/{run_id}/artifacts"
    assert got.info.experiment_id == cauce.get_run(run_id).info.experiment_id
    # Every write is audited, by the workspace's user.
    actions = {e.action for e in events(any_workspace, entity_kind="run", entity_id=run_id)}
    assert {"run.create", "run.params", "run.tag", "run.untag", "run.end"} <= actions

    client.update_run(run_id, name="renamed")
    assert cauce.get_run(run_id).info.run_name == "renamed"
    client.delete_run(run_id)
    assert cauce.get_run(run_id).info.lifecycle_stage == "deleted"
    assert mlflow.search_runs(output_format="list", search_all_experiments=True) == []
    client.restore_run(run_id)
    with pytest.raises(mlflow.exceptions.MlflowException) as raised:
        client.get_run("f" * 32)
    assert error_code(raised) == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_datasets_are_kept_as_the_runs_dataset_references(
    mlflow: Any,
    client: Any,
    any_workspace: Workspace,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import cauce
    from cauce.lineage.audit import events

    frame = pd.DataFrame({"tenure": [1.0, 5.0, 20.0, 40.0], "charges": [90.0, 80.0, 40.0, 20.0]})
    dataset = mlflow.data.from_pandas(frame, source="s3://lake/churn.parquet", name="churn")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # again: kept once
    got = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest, d.tags[0].value) for d in got] == [
        ("churn", dataset.digest, "training")
    ]
    assert "s3://lake/churn.parquet" in got[0].dataset.source
    assert "tenure" in got[0].dataset.schema
    [seen] = cauce.get_run(run.info.run_id).inputs.dataset_references
    assert (seen.name, seen.digest, seen.context, seen.source_type) == (
        "churn",
        dataset.digest,
        "training",
        "s3",
    )
    assert len(events(any_workspace, entity_id=run.info.run_id, action="run.input")) == 1
    found = mlflow.search_runs(filter_string="datasets.name = 'churn'", output_format="list")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    url = mlflow.get_tracking_uri()
    page = httpx.get(f"{url}/ui/runs/{run.info.run_id}").text
    assert "Dataset (not held by Cauce)" in page and "s3://lake/churn.parquet" in page
    shown = run_cli(tmp_path, "runs", "show", run.info.run_id, server=url).stdout
    assert "not held by Cauce" in shown and "s3://lake/churn.parquet" in shown

    # sklearn's autolog logs its training data as a dataset: no failure, and it is kept.
    mlflow.sklearn.autolog(log_models=False)
    try:
        with mlflow.start_run() as fitted:
            LogisticRegression().fit(frame, [1, 1, 0, 0])
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert "unexpected error" not in caplog.text
    [kept] = cauce.get_run(fitted.info.run_id).inputs.dataset_references
    assert kept.context == "train"

    reply = httpx.post(
        f"{mlflow.get_tracking_uri()}/api/2.0/mlflow/runs/log-inputs",
        json={
            "run_id": run.info.run_id,
            "datasets": [
                {"dataset": {"name": "x" * 501, "digest": "d", "source_type": "s", "source": "s"}}
            ],
        },
    )
    assert (reply.status_code, reply.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "references.0.name" in reply.json()["message"]


def test_search_runs_speaks_mlflows_filters_order_and_pages(
    mlflow: Any, client: Any, any_workspace: Workspace
) -> None:
    import cauce

    experiment = mlflow.set_experiment("sweep")
    for alpha, rmse in [("0.5", 0.4), ("0.5", 0.8), ("0.5", 1.2), ("0.1", 0.3)]:
        with mlflow.start_run():
            mlflow.log_param("alpha", alpha)
            mlflow.log_metric("rmse", rmse)
    # Logged with Cauce's own SDK: MLflow's client sees it too.
    with cauce.start_run(experiment="sweep") as run:
        cauce.log_params({"alpha": "0.5"})
        cauce.log_metric("rmse", 0.6)
    found = mlflow.search_runs(
        filter_string="metrics.rmse < 1 and params.alpha = '0.5'",
        order_by=["metrics.rmse DESC"],
    )
    assert list(found["metrics.rmse"]) == [0.8, 0.6, 0.4]
    assert run.run_id in set(found["run_id"])
    tagged = mlflow.search_runs(filter_string="tags.`mlflow.runName` != ''", output_format="list")
    assert len(tagged) == 5

    pages, token = [], None
    while True:
        page = client.search_runs(
            [experiment.experiment_id],
            order_by=["metrics.rmse ASC"],
            max_results=2,
            page_token=token,
        )
        pages.append([r.data.metrics["rmse"] for r in page])
        token = page.token
        if not token:
            break
    assert pages == [[0.3, 0.4], [0.6, 0.8], [1.2]]
    with pytest.raises(mlflow.exceptions.MlflowException) as raised:
        mlflow.search_runs(filter_string="metrics.rmse <")
    assert error_code(raised) == "INVALID_PARAMETER_VALUE"


# -- artifacts ------------------------------------------------------------------------------


def test_artifacts_go_through_the_proxy_into_cauces_store(
    mlflow: Any, client: Any, any_workspace: Workspace, tmp_path: Path
) -> None:
    import cauce.tracking.artifacts as arts

    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(folder / "a.txt"))
        mlflow.log_artifacts(str(folder), "plots")
        mlflow.log_text("hello", "notes/hello.txt")
    run_id = run.info.run_id

    stored = {e.path: e.size for e in arts.list_artifacts(run_id)}
    assert stored == {"a.txt": 5, "plots/a.txt": 5, "plots/sub/b.txt": 4, "notes/hello.txt": 5}
    assert [(f.path, f.is_dir) for f in client.list_artifacts(run_id)] == [
        ("a.txt", False),
        ("notes", True),
        ("plots", True),
    ]
    assert [f.path for f in client.list_artifacts(run_id, "plots/sub")] == ["plots/sub/b.txt"]
    out = Path(client.download_artifacts(run_id, "plots", str(tmp_path / "down")))
    assert (out / "sub" / "b.txt").read_text() == "beta"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/notes/hello.txt") == "hello"

    # A path that leaves the run is refused, whatever the client sends.
    url = f"{mlflow.get_tracking_uri()}/api/2.0/mlflow-artifacts/artifacts/"
    base = f"{run.info.experiment_id}/{run_id}/artifacts"
    for bad in (f"{base}/../../x.txt", f"{base}/a/../../../etc/passwd"):
        reply = httpx.put(url + bad, content=b"x")
        assert reply.status_code in (400, 404), reply.text
        assert reply.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert set(stored) == {e.path for e in arts.list_artifacts(run_id)}


def test_errors_have_mlflows_shape(mlflow: Any) -> None:
    base = f"{mlflow.get_tracking_uri()}/api/2.0/mlflow"
    reply = httpx.get(f"{base}/runs/get", params={"run_id": "f" * 32})
    assert reply.status_code == 404
    assert reply.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    reply = httpx.post(f"{base}/runs/create", content=b"{not json")
    assert reply.status_code == 400 and reply.json()["error_code"] == "BAD_REQUEST"
    reply = httpx.post(f"{base}/runs/create", content=b"[" * 100_000 + b"]" * 100_000)
    assert reply.status_code == 400 and reply.json()["error_code"] == "BAD_REQUEST"
    reply = httpx.post(f"{base}/runs/log-metric", json={"run_id": "f" * 32, "key": "k"})
    assert reply.status_code == 400 and reply.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    ajax = f"{mlflow.get_tracking_uri()}/ajax-api/2.0/mlflow/experiments/get"
    assert httpx.get(ajax, params={"experiment_id": "0"}).status_code == 200
    # A call Cauce does not serve is MLflow's NOT_IMPLEMENTED, named, not a bare 404.
    trace = "tr-" + "f" * 32
    with pytest.raises(mlflow.MlflowException) as unmapped:
        mlflow.get_assessment(trace, "a-1")  # Cauce keeps no assessment ids
    assert error_code(unmapped) == "NOT_IMPLEMENTED"
    assert f"/api/3.0/mlflow/traces/{trace}/assessments/a-1" in str(unmapped.value)
    with pytest.raises(mlflow.MlflowException) as unknown:
        mlflow.MlflowClient().get_trace("tr-" + "f" * 32)
    assert error_code(unknown) == "RESOURCE_DOES_NOT_EXIST"
    reply = httpx.post(f"{base}/model-versions/no-such-call", json={})
    assert (reply.status_code, reply.json()["error_code"]) == (501, "NOT_IMPLEMENTED")


# -- models ---------------------------------------------------------------------------------


def _train() -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(
        {
            "tenure": [1.0, 5.0, 20.0, 40.0, 3.0, 30.0],
            "charges": [90.0, 80.0, 40.0, 20.0, 85.0, 30.0],
        }
    )
    model = LogisticRegression().fit(frame, [1, 1, 0, 0, 1, 0])
    return model, frame


def test_sklearn_model_registers_aliases_loads_and_is_cauce_version(
    mlflow: Any, client: Any, any_workspace: Workspace
) -> None:
    import mlflow.sklearn

    from cauce.lineage.audit import events
    from cauce.lineage.graph import walk
    from cauce.registry.models import get_model, load, resolve

    model, frame = _train()
    mlflow.set_experiment("churn")
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.9)
        info = mlflow.sklearn.log_model(model, name="model", input_example=frame[:2])
    assert info.model_uri.startswith("models:/m-")
    version = mlflow.register_model(info.model_uri, "churn")
    assert version.version == "1"
    client.set_registered_model_alias("churn", "champion", version.version)
    assert client.get_model_version_by_alias("churn", "champion").version == "1"
    loaded = mlflow.pyfunc.load_model("models:/churn@champion")
    assert list(loaded.predict(frame)) == list(model.predict(frame))
    assert client.get_logged_model(info.model_id).source_run_id == run.info.run_id
    assert [m.model_id for m in client.get_run(run.info.run_id).outputs.model_outputs] == [
        info.model_id
    ]

    # The same version in Cauce's registry: its run, its alias, its lineage and audit trail.
    seen = resolve("models:/churn@champion")
    assert (seen.version, seen.run_id, seen.flavor) == (1, run.info.run_id, "mlflow")
    assert get_model("churn").aliases == {"champion": 1}
    assert seen.signature is not None
    assert [c["name"] for c in seen.signature["inputs"]["columns"]] == ["tenure", "charges"]
    ours = load("models:/churn@champion")
    assert list(ours.predict(frame)) == list(model.predict(frame))
    assert load(f"runs:/{run.info.run_id}/model").flavor.name == "mlflow"
    graph = walk(any_workspace, "model_version", seen.id, direction="upstream")
    assert ("run", run.info.run_id) in {(n.kind, n.id) for n in graph.nodes}
    actions = {e.action for e in events(any_workspace, entity_kind="model")}
    assert {"model.create", "model.alias.set"} <= actions

    registered = client.get_registered_model("churn")
    assert [a for a in registered.aliases] == ["champion"]
    assert [m.name for m in client.search_registered_models(filter_string="name = 'churn'")] == [
        "churn"
    ]
    versions = client.search_model_versions("name = 'churn'")
    assert [(v.version, v.run_id) for v in versions] == [("1", run.info.run_id)]
    assert client.get_model_version_download_uri("churn", "1") == (
        "mlflow-artifacts:/model-versions/churn/1"
    )
    client.delete_registered_model_alias("churn", "champion")
    assert get_model("churn").aliases == {}
    client.set_registered_model_tag("churn", "team", "retention")
    client.set_model_version_tag("churn", "1", "validated", "yes")
    assert client.get_registered_model("churn").tags == {"team": "retention"}
    client.delete_registered_model_tag("churn", "team")
    client.delete_model_version_tag("churn", "1", "validated")
    assert get_model("churn").tags == {} and "validated" not in resolve("models:/churn/1").tags
    with pytest.raises(mlflow.exceptions.MlflowException) as untagged:
        client.delete_registered_model_tag("churn", "team")
    assert error_code(untagged) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(mlflow.exceptions.MlflowException) as raised:
        client.get_registered_model("nope")
    assert error_code(raised) == "RESOURCE_DOES_NOT_EXIST"


def test_a_model_logged_without_a_run_registers_and_loads(
    mlflow: Any, any_workspace: Workspace
) -> None:
    import mlflow.sklearn

    from cauce.registry.models import load

    model, frame = _train()
    info = mlflow.sklearn.log_model(model, name="loose")
    assert mlflow.active_run() is None
    version = mlflow.register_model(info.model_uri, "loose")
    ours = load(f"models:/loose/{version.version}")
    assert list(ours.predict(frame)) == list(model.predict(frame))
    assert list(mlflow.pyfunc.load_model(info.model_uri).predict(frame)) == list(
        model.predict(frame)
    )


def test_an_external_model_is_a_record_of_a_genai_app_not_a_version(
    mlflow: Any, client: Any
) -> None:
    """``set_active_model`` (MLflow 3's GenAI app versions) makes an external logged model: its
    files live elsewhere, so Cauce keeps the record and does not try to load it."""
    with mlflow.start_run():
        model = mlflow.set_active_model(name="agent-v1")
        mlflow.log_model_params({"temperature": "0.2"}, model_id=model.model_id)
    found = mlflow.get_logged_model(model.model_id)
    assert (found.name, found.params, str(found.status)) == (
        "agent-v1",
        {"temperature": "0.2"},
        "READY",
    )
    with pytest.raises(mlflow.MlflowException) as raised:
        mlflow.register_model(f"models:/{model.model_id}", "agent")
    assert error_code(raised) == "INVALID_PARAMETER_VALUE" and "external" in str(raised.value)


@pytest.mark.slow
def test_a_model_the_mlflow_client_registered_is_served_by_a_cauce_endpoint(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from served import serving

    model, frame = _train()
    with mlflow_at(workspace, monkeypatch) as mlflow:
        import mlflow.sklearn

        with mlflow.start_run():
            info = mlflow.sklearn.log_model(model, name="model", input_example=frame[:2])
        version = mlflow.register_model(info.model_uri, "churn")
        mlflow.MlflowClient().set_registered_model_alias("churn", "champion", version.version)
    spec = (
        "kind: Endpoint\nname: churn\ntraffic: {blue: 100}\n---\n"
        "kind: Deployment\nendpoint: churn\nname: blue\nmodel: models:/churn@champion\n"
    )
    rows = frame.to_dict(orient="records")
    with serving(workspace, spec, ["blue"]) as served:
        reply = served.score(rows)
        assert reply.status_code == 200, reply.text
        assert reply.json()["predictions"] == [int(p) for p in model.predict(frame)]


def test_the_client_logs_through_the_proxy_quickly(mlflow: Any) -> None:
    """Not a benchmark (benchmarks/ has those): a guard that a call stays a few milliseconds."""
    with mlflow.start_run() as run:
        started = time.perf_counter()
        for step in range(50):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        per_call = (time.perf_counter() - started) / 50
    assert per_call < 0.05, f"{per_call * 1000:.1f} ms per log_metric"
    with tempfile.TemporaryDirectory():
        assert len(mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")) == 50
