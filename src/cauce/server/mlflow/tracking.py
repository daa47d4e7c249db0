"""MLflow's tracking calls (experiments, runs, metrics, params, tags, logged models) over
Cauce's tracking SDK.

Each handler reads an MLflow request (:class:`~cauce.server.mlflow.wire.Params`), calls the SDK
with the request's workspace and answers MLflow's JSON: the rows are Cauce's own, so what the
MLflow client logs is what ``cauce.get_run`` and ``cauce runs`` show, and the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.server.mlflow.wire import (
    MlflowError,
    Params,
    matches,
    number,
    page,
    page_token,
    pairs,
    read_page_token,
    unsupported,
)
from cauce.tracking import experiments as exps
from cauce.tracking import logged_models as lm
from cauce.tracking import runs as sdk
from cauce.tracking.entities import DatasetReference, Experiment, Run, RunInfo
from cauce.tracking.search import search_runs as sdk_search_runs
from cauce.workspace import Workspace

Handler = Callable[[Workspace, Params], dict[str, Any]]

# MLflow's client names the default experiment "0" until told otherwise.
DEFAULT_EXPERIMENT_ID = "0"
NOTE_TAG = "mlflow.note.content"
_VIEWS = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}
_MODEL_STATUS = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
}
_WIRE_STATUS = {v: k for k, v in _MODEL_STATUS.items()}


# -- ids and URIs ---------------------------------------------------------------------------


def experiment_id(ws: Workspace, value: str) -> str:
    """Cauce's id of an experiment MLflow names by id: "0" is the workspace's default one,
    created on first use."""
    if value != DEFAULT_EXPERIMENT_ID:
        return value
    name = ws.settings.experiment
    try:
        return exps.get_experiment(name, workspace=ws).experiment_id
    except NotFound:
        try:
            return exps.create_experiment(name, workspace=ws).experiment_id
        except AlreadyExists:  # created by a concurrent request
            return exps.get_experiment(name, workspace=ws).experiment_id


def run_artifact_uri(experiment: str, run_id: str) -> str:
    """Where MLflow's client reads and writes a run's files: the artifacts proxy."""
    return f"mlflow-artifacts:/{experiment}/{run_id}/artifacts"


def logged_model_uri(model: lm.LoggedModelInfo) -> str:
    """Where a logged model's files are, through the artifacts proxy."""
    if model.run_id is not None:
        return f"{run_artifact_uri(model.experiment_id, model.run_id)}/{model.artifact_path}"
    return f"mlflow-artifacts:/{model.experiment_id}/{model.artifact_path}/artifacts"


# -- entities as MLflow writes them ---------------------------------------------------------


def experiment_json(e: Experiment) -> dict[str, Any]:
    """An experiment in MLflow's shape; its description is the ``mlflow.note.content`` tag."""
    return {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": f"mlflow-artifacts:/{e.experiment_id}",
        "lifecycle_stage": e.lifecycle_stage,
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": pairs(_mlflow_tags(e)),
    }


def _mlflow_tags(e: Experiment) -> dict[str, str]:
    """An experiment's tags as MLflow's client sees them: its description is one."""
    return {**e.tags, **({NOTE_TAG: e.description} if e.description else {})}


def run_info_json(info: RunInfo) -> dict[str, Any]:
    """A run's info in MLflow's shape."""
    out = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": run_artifact_uri(info.experiment_id, info.run_id),
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def run_json(run: Run, outputs: list[tuple[str, int]]) -> dict[str, Any]:
    """A run in MLflow's shape; what Cauce records about its source shows as MLflow's tags."""
    info = run.info
    tags = dict(run.data.tags)
    for key, value in (
        ("mlflow.runName", info.run_name),
        ("mlflow.user", info.user_id),
        ("mlflow.parentRunId", info.parent_run_id),
        ("mlflow.source.git.commit", info.source_commit),
        ("mlflow.source.name", info.entry_point),
    ):
        if value is not None and key not in tags:
            tags[key] = value
    return {
        "info": run_info_json(info),
        "data": {
            "metrics": [
                {"key": k, "value": number(v), "timestamp": 0, "step": 0}
                for k, v in run.data.metrics.items()
            ],
            "params": pairs(run.data.params),
            "tags": pairs(tags),
        },
        "inputs": {
            "dataset_inputs": [
                {
                    "tags": [{"key": "mlflow.data.context", "value": d.context}],
                    "dataset": {
                        "name": d.dataset,
                        "digest": d.content_hash[:16],
                        "source_type": "cauce",
                        "source": f"{d.dataset}/{d.version}",
                    },
                }
                for d in run.inputs.dataset_inputs
            ]
            + [
                {
                    "tags": [{"key": "mlflow.data.context", "value": r.context}],
                    "dataset": {
                        "name": r.name,
                        "digest": r.digest,
                        "source_type": r.source_type,
                        "source": r.source,
                        **({"schema": r.schema} if r.schema is not None else {}),
                        **({"profile": r.profile} if r.profile is not None else {}),
                    },
                }
                for r in run.inputs.dataset_references
            ]
        },
        "outputs": {"model_outputs": [{"model_id": m, "step": s} for m, s in outputs]},
    }


def logged_model_json(model: lm.LoggedModelInfo) -> dict[str, Any]:
    """A logged model in MLflow's shape."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "artifact_uri": logged_model_uri(model),
        "status": _WIRE_STATUS[model.status],
        "tags": pairs(model.tags),
    }
    if model.model_type:
        info["model_type"] = model.model_type
    if model.run_id:
        info["source_run_id"] = model.run_id
    metrics = [
        {
            "key": m["key"],
            "value": number(m["value"]),
            "timestamp": m["timestamp"],
            "step": m["step"],
            "model_id": model.model_id,
            **({"run_id": m["run_id"]} if m.get("run_id") else {}),
        }
        for m in model.metrics
    ]
    return {"info": info, "data": {"params": pairs(model.params), "metrics": metrics}}


def _runs_json(ws: Workspace, runs: list[Run]) -> list[dict[str, Any]]:
    outputs = lm.run_outputs([r.info.run_id for r in runs], workspace=ws)
    return [run_json(r, outputs[r.info.run_id]) for r in runs]


# -- experiments ----------------------------------------------------------------------------


def create_experiment(ws: Workspace, p: Params) -> dict[str, Any]:
    tags = p.key_values("tags")
    note = tags.pop(NOTE_TAG, None)  # MLflow's description
    if p.text("artifact_location"):
        raise unsupported("artifact_location", "; the workspace's artifact store holds them all")
    try:
        e = exps.create_experiment(p.text("name", required=True), note, tags, workspace=ws)
    except AlreadyExists as exc:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", exc.message) from None
    return {"experiment_id": e.experiment_id}


def get_experiment(ws: Workspace, p: Params) -> dict[str, Any]:
    eid = experiment_id(ws, p.text("experiment_id", required=True))
    e = exps.get_experiment(eid, workspace=ws)
    if e.experiment_id != eid:  # get_experiment also finds by name
        raise NotFound(f"experiment {eid!r} does not exist")
    return {"experiment": experiment_json(e)}


def get_experiment_by_name(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("experiment_name", required=True)
    e = exps.get_experiment(name, workspace=ws)
    if e.name != name:
        raise NotFound(f"experiment {name!r} does not exist")
    return {"experiment": experiment_json(e)}


def search_experiments(ws: Workspace, p: Params) -> dict[str, Any]:
    view = _VIEWS.get(p.text("view_type", default="ACTIVE_ONLY"), "active")
    found = exps.list_experiments(include_deleted=view != "active", workspace=ws)
    if view == "deleted":
        found = [e for e in found if e.lifecycle_stage == "deleted"]
    text = p.text("filter")
    if text:
        found = [e for e in found if matches({"name": e.name}, text, _mlflow_tags(e))]
    orders = p.repeated("order_by") or ["creation_time DESC"]
    for clause in reversed(orders):
        field, _, direction = str(clause).strip().partition(" ")
        field = field.removeprefix("attributes.").removeprefix("attribute.")
        if field not in ("name", "creation_time", "last_update_time", "experiment_id"):
            raise MlflowError("INVALID_PARAMETER_VALUE", f"cannot order experiments by {field}")
        key = {"experiment_id": "experiment_id", "name": "name"}.get(field, field)
        found.sort(key=attrgetter(key), reverse=direction.strip().upper() == "DESC")
    return page(p, found, experiment_json, "experiments", default_max=1000)


def delete_experiment(ws: Workspace, p: Params) -> dict[str, Any]:
    exps.delete_experiment(experiment_id(ws, p.text("experiment_id", required=True)), workspace=ws)
    return {}


def restore_experiment(ws: Workspace, p: Params) -> dict[str, Any]:
    eid = experiment_id(ws, p.text("experiment_id", required=True))
    exps.restore_experiment(eid, workspace=ws)
    return {}


def update_experiment(ws: Workspace, p: Params) -> dict[str, Any]:
    eid = experiment_id(ws, p.text("experiment_id", required=True))
    new_name = p.text("new_name")
    if new_name:
        exps.rename_experiment(eid, new_name, workspace=ws)
    return {}


def set_experiment_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    eid = experiment_id(ws, p.text("experiment_id", required=True))
    key, value = p.text("key", required=True), p.text("value", default="")
    if key == NOTE_TAG:
        exps.set_experiment_description(eid, value or None, workspace=ws)
    else:
        exps.set_experiment_tags(eid, {key: value}, workspace=ws)
    return {}


def delete_experiment_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    eid = experiment_id(ws, p.text("experiment_id", required=True))
    key = p.text("key", required=True)
    if key == NOTE_TAG:
        exps.set_experiment_description(eid, None, workspace=ws)
    else:
        exps.delete_experiment_tag(eid, key, workspace=ws)
    return {}


# -- runs -----------------------------------------------------------------------------------


def _run_id(p: Params) -> str:
    value: str = p.text("run_id") or p.text("run_uuid", required=True)
    return value


def create_run(ws: Workspace, p: Params) -> dict[str, Any]:
    tags = p.key_values("tags")
    name = p.text("run_name") or tags.get("mlflow.runName")
    info = sdk.create_run(
        run_name=name,
        parent_run_id=tags.get("mlflow.parentRunId"),
        tags=tags,
        experiment_id=experiment_id(ws, p.text("experiment_id", default=DEFAULT_EXPERIMENT_ID)),
        workspace=ws,
    )
    return {"run": run_json(sdk.get_run(info.run_id, workspace=ws), [])}


def get_run(ws: Workspace, p: Params) -> dict[str, Any]:
    run = sdk.get_run(_run_id(p), workspace=ws)
    return {"run": _runs_json(ws, [run])[0]}


def update_run(ws: Workspace, p: Params) -> dict[str, Any]:
    run_id = _run_id(p)
    name = p.text("run_name")
    if name:
        sdk.rename_run(run_id, name, workspace=ws)
        sdk.set_tags(run_id, {"mlflow.runName": name}, workspace=ws)
    status = p.text("status")
    if status in ("FINISHED", "FAILED", "KILLED"):
        sdk.end_run(run_id, status, workspace=ws)
    elif status is not None:
        sdk.set_run_status(run_id, status, workspace=ws)
    return {"run_info": run_info_json(sdk.get_run(run_id, workspace=ws).info)}


def delete_run(ws: Workspace, p: Params) -> dict[str, Any]:
    sdk.delete_run(_run_id(p), workspace=ws)
    return {}


def restore_run(ws: Workspace, p: Params) -> dict[str, Any]:
    sdk.restore_run(_run_id(p), workspace=ws)
    return {}


def search_runs(ws: Workspace, p: Params) -> dict[str, Any]:
    ids = [experiment_id(ws, str(e)) for e in p.repeated("experiment_ids")]
    view = _VIEWS.get(p.text("run_view_type", default="ACTIVE_ONLY"))
    if view is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", "run_view_type must be ACTIVE_ONLY, ...")
    limit = p.integer("max_results", default=1000)
    if not 0 < limit <= 50000:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"max_results must be 1..50000, not {limit}")
    offset = read_page_token(p.text("page_token"))
    found = sdk_search_runs(
        ids or None,
        filter=_mlflow_filter(p.text("filter")),
        order_by=[str(_mlflow_filter(str(o))) for o in p.repeated("order_by")],
        max_results=limit + 1,
        offset=offset,
        lifecycle=view,
        workspace=ws,
    )
    out: dict[str, Any] = {"runs": _runs_json(ws, found[:limit])}
    if len(found) > limit:
        out["next_page_token"] = page_token(offset + limit)
    return out


# MLflow's names that Cauce keeps as run attributes rather than tags.
_ALIASES = (
    (r"\b(?:attributes?\.)?created\b", "attributes.start_time"),
    (r"\btags\.(?:`mlflow\.runName`|\"mlflow\.runName\"|mlflow\.runName)", "attributes.run_name"),
    (r"\btags\.(?:`mlflow\.user`|\"mlflow\.user\"|mlflow\.user)", "attributes.user_id"),
)


def _mlflow_filter(text: str | None) -> str | None:
    """MLflow's filter (or order_by clause) in Cauce's language: the same but for a few names."""
    if not text:
        return text
    import re

    for pattern, replacement in _ALIASES:
        text = re.sub(pattern, replacement, text)
    return text


# -- metrics, params, tags ------------------------------------------------------------------


def log_metric(ws: Workspace, p: Params) -> dict[str, Any]:
    run_id = _run_id(p)
    key = p.text("key", required=True)
    value = p.real("value")
    step = p.integer("step", default=0)
    timestamp = p.integer("timestamp")
    model_id = p.text("model_id")
    if model_id:
        _log_model_metrics(ws, run_id, [_metric(key, value, step, timestamp, model_id)])
    else:
        sdk.log_metric(run_id, key, value, step, timestamp, workspace=ws)
    return {}


def _metric(key: str, value: float, step: int, ts: int | None, model_id: str) -> dict[str, Any]:
    return {"key": key, "value": value, "step": step, "timestamp": ts, "model_id": model_id}


def log_param(ws: Workspace, p: Params) -> dict[str, Any]:
    key = p.text("key", required=True)
    sdk.log_params(_run_id(p), {key: p.text("value", default="")}, workspace=ws)
    return {}


def set_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    run_id = _run_id(p)
    key = p.text("key", required=True)
    value = p.text("value", default="")
    sdk.set_tags(run_id, {key: value}, workspace=ws)
    if key == "mlflow.runName" and value:
        sdk.rename_run(run_id, value, workspace=ws)
    return {}


def delete_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    sdk.delete_tag(_run_id(p), p.text("key", required=True), workspace=ws)
    return {}


def log_batch(ws: Workspace, p: Params) -> dict[str, Any]:
    run_id = _run_id(p)
    plain: list[tuple[str, float, int | None, int | None]] = []
    for_models: list[dict[str, Any]] = []
    for m in p.repeated("metrics"):
        one = Params(m)
        metric = (
            one.text("key", required=True),
            one.real("value"),
            one.integer("step", default=0),
            one.integer("timestamp"),
        )
        model_id = one.text("model_id")
        if model_id:
            for_models.append(_metric(*metric, model_id))
        else:
            plain.append(metric)
    params = p.key_values("params")
    tags = p.key_values("tags")
    if params:
        sdk.log_params(run_id, params, workspace=ws)
    if plain:
        sdk.log_metric_values(run_id, plain, workspace=ws)
    if for_models:
        _log_model_metrics(ws, run_id, for_models)
    if tags:
        sdk.set_tags(run_id, tags, workspace=ws)
        if tags.get("mlflow.runName"):
            sdk.rename_run(run_id, tags["mlflow.runName"], workspace=ws)
    return {}


def _log_model_metrics(ws: Workspace, run_id: str, values: list[dict[str, Any]]) -> None:
    """Metrics measured on a logged model: recorded on the model, and in the run's history
    unless the run already has that very value (MLflow's log_model logs a run's metrics of the
    step again, naming the model)."""
    import math

    new = []
    for key in {v["key"] for v in values}:
        history = {
            (h.step, h.timestamp, "nan" if math.isnan(h.value) else h.value)
            for h in sdk.get_metric_history(run_id, key, workspace=ws)
        }
        for v in values:
            value = "nan" if math.isnan(v["value"]) else v["value"]
            if v["key"] == key and (v["step"], v["timestamp"], value) not in history:
                new.append((key, v["value"], v["step"], v["timestamp"]))
    if new:
        sdk.log_metric_values(run_id, new, workspace=ws)
    by_model: dict[str, list[dict[str, Any]]] = {}
    for v in values:
        by_model.setdefault(v["model_id"], []).append({**v, "run_id": run_id})
    for model_id, rows in by_model.items():
        lm.log_logged_model_metrics(model_id, rows, workspace=ws)


def get_metric_history(ws: Workspace, p: Params) -> dict[str, Any]:
    history = sdk.get_metric_history(_run_id(p), p.text("metric_key", required=True), workspace=ws)
    return {
        "metrics": [
            {"key": m.key, "value": number(m.value), "timestamp": m.timestamp, "step": m.step}
            for m in history
        ]
    }


def log_inputs(ws: Workspace, p: Params) -> dict[str, Any]:
    """MLflow's datasets are kept as the run's dataset references (their data stays where it
    is); model inputs need the run to exist, nothing more."""
    references = [_reference(one) for one in p.repeated("datasets")]
    run_id = _run_id(p)
    if references:
        sdk.record_dataset_references(run_id, references, workspace=ws)
    else:
        sdk.get_run(run_id, workspace=ws)
    return {}


def _reference(given: Any) -> DatasetReference:
    dataset = given.get("dataset") if isinstance(given, dict) else None
    if not isinstance(dataset, dict):
        raise InvalidInput("datasets: each needs its dataset", details={"field": "datasets"})
    tags = Params(given).key_values("tags")
    d = Params(dataset)
    return DatasetReference(
        name=d.text("name", required=True),
        digest=d.text("digest", required=True),
        context=str(tags.get("mlflow.data.context") or "training"),
        source_type=d.text("source_type", required=True),
        source=d.text("source", required=True),
        schema=d.text("schema"),
        profile=d.text("profile"),
    )


def log_outputs(ws: Workspace, p: Params) -> dict[str, Any]:
    run_id = _run_id(p)
    for m in p.repeated("models"):
        one = Params(m)
        lm.set_logged_model_step(
            one.text("model_id", required=True),
            run_id,
            one.integer("step", default=0),
            workspace=ws,
        )
    return {}


def log_model(ws: Workspace, p: Params) -> dict[str, Any]:
    # MLflow 2's record of a logged model (a run tag holding MLmodel JSON): Cauce reads the
    # MLmodel file itself, so there is nothing more to keep than that the run exists.
    sdk.get_run(_run_id(p), workspace=ws)
    return {}


# -- logged models --------------------------------------------------------------------------


def create_logged_model(ws: Workspace, p: Params) -> dict[str, Any]:
    model = lm.create_logged_model(
        experiment_id(ws, p.text("experiment_id", required=True)),
        p.text("name"),
        run_id=p.text("source_run_id"),
        model_type=p.text("model_type"),
        params=p.key_values("params"),
        tags=p.key_values("tags"),
        workspace=ws,
    )
    return {"model": logged_model_json(model)}


def get_logged_model(ws: Workspace, p: Params) -> dict[str, Any]:
    model = lm.get_logged_model(p.text("model_id", required=True), workspace=ws)
    return {"model": logged_model_json(model)}


def finalize_logged_model(ws: Workspace, p: Params) -> dict[str, Any]:
    from cauce.registry.mlflow_format import package_logged_model

    model_id = p.text("model_id", required=True)
    status = _MODEL_STATUS.get(p.text("status", default=""))
    if status is None:
        raise MlflowError("INVALID_PARAMETER_VALUE", f"unknown status {p.text('status')!r}")
    model = lm.set_logged_model_status(model_id, status, workspace=ws)
    if status == "READY":
        package_logged_model(model_id, workspace=ws)
    return {"model": logged_model_json(model)}


def delete_logged_model(ws: Workspace, p: Params) -> dict[str, Any]:
    lm.delete_logged_model(p.text("model_id", required=True), workspace=ws)
    return {}


def search_logged_models(ws: Workspace, p: Params) -> dict[str, Any]:
    if p.repeated("datasets"):
        raise unsupported("datasets in logged model searches")
    ids = [experiment_id(ws, str(e)) for e in p.repeated("experiment_ids")]
    found = lm.search_logged_models(ids or None, max_results=1_000_000, workspace=ws)
    text = p.text("filter")
    if text:
        found = [
            m
            for m in found
            if matches(
                {
                    "name": m.name,
                    "model_id": m.model_id,
                    "source_run_id": m.run_id,
                    "status": _WIRE_STATUS[m.status],
                    "model_type": m.model_type,
                },
                text,
                m.tags,
            )
        ]
    columns = {
        "name": "name",
        "model_id": "model_id",
        "creation_timestamp": "created_at",
        "creation_time": "created_at",
        "last_updated_timestamp": "updated_at",
    }
    for order in reversed(p.repeated("order_by")):
        column = columns.get(str(order.get("field_name", "")).removeprefix("attributes."))
        if column is None or order.get("dataset_name"):
            raise unsupported(f"ordering logged models by {order}")
        found.sort(key=attrgetter(column), reverse=not order.get("ascending", True))
    return page(p, found, logged_model_json, "models", default_max=100)


def set_logged_model_tags(ws: Workspace, p: Params) -> dict[str, Any]:
    model = lm.set_logged_model_tags(
        p.text("model_id", required=True), p.key_values("tags"), workspace=ws
    )
    return {"model": logged_model_json(model)}


def delete_logged_model_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    lm.delete_logged_model_tag(
        p.text("model_id", required=True), p.text("tag_key", required=True), workspace=ws
    )
    return {}


def log_logged_model_params(ws: Workspace, p: Params) -> dict[str, Any]:
    lm.log_logged_model_params(
        p.text("model_id", required=True), p.key_values("params"), workspace=ws
    )
    return {}


# (path under /api/2.0/mlflow, methods, handler)
ROUTES: list[tuple[str, tuple[str, ...], Handler]] = [
    ("/experiments/create", ("POST",), create_experiment),
    ("/experiments/get", ("GET",), get_experiment),
    ("/experiments/get-by-name", ("GET",), get_experiment_by_name),
    ("/experiments/search", ("POST", "GET"), search_experiments),
    ("/experiments/delete", ("POST",), delete_experiment),
    ("/experiments/restore", ("POST",), restore_experiment),
    ("/experiments/update", ("POST",), update_experiment),
    ("/experiments/set-experiment-tag", ("POST",), set_experiment_tag),
    ("/experiments/delete-experiment-tag", ("POST",), delete_experiment_tag),
    ("/runs/create", ("POST",), create_run),
    ("/runs/get", ("GET",), get_run),
    ("/runs/update", ("POST",), update_run),
    ("/runs/delete", ("POST",), delete_run),
    ("/runs/restore", ("POST",), restore_run),
    ("/runs/search", ("POST",), search_runs),
    ("/runs/log-metric", ("POST",), log_metric),
    ("/runs/log-parameter", ("POST",), log_param),
    ("/runs/set-tag", ("POST",), set_tag),
    ("/runs/delete-tag", ("POST",), delete_tag),
    ("/runs/log-batch", ("POST",), log_batch),
    ("/runs/log-inputs", ("POST",), log_inputs),
    ("/runs/outputs", ("POST",), log_outputs),
    ("/runs/log-model", ("POST",), log_model),
    ("/metrics/get-history", ("GET",), get_metric_history),
    ("/logged-models", ("POST",), create_logged_model),
    ("/logged-models/search", ("POST",), search_logged_models),
    ("/logged-models/{model_id}", ("GET",), get_logged_model),
    ("/logged-models/{model_id}", ("PATCH",), finalize_logged_model),
    ("/logged-models/{model_id}", ("DELETE",), delete_logged_model),
    ("/logged-models/{model_id}/tags", ("PATCH",), set_logged_model_tags),
    ("/logged-models/{model_id}/tags/{tag_key}", ("DELETE",), delete_logged_model_tag),
    ("/logged-models/{model_id}/params", ("POST",), log_logged_model_params),
]
