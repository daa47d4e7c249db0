"""MLflow's model registry calls over Cauce's registry: registered models, versions, aliases.

A version the MLflow client creates from a logged model or a run's folder is a Cauce version
(immutable, its files checked by sha256, with lineage to the run); an MLflow-format folder gains
a ``cauce-model.yaml`` on the way (``cauce.registry.mlflow_format``), so a Cauce deployment
serves it. Every version downloads through the artifacts proxy at
``mlflow-artifacts:/model-versions/<name>/<version>``.
"""

from __future__ import annotations

import re
from operator import attrgetter
from typing import Any

from cauce.errors import Conflict, InvalidInput
from cauce.registry import mlflow_format
from cauce.registry import models as reg
from cauce.registry.models import ModelVersion, RegisteredModel
from cauce.server.mlflow.tracking import Handler
from cauce.server.mlflow.wire import MlflowError, Params, matches, page, pairs, unsupported
from cauce.workspace import Workspace

_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)/(?P<path>.+?)/?$")
_PROXY = re.compile(r"^mlflow-artifacts:/+[^/]+/(?P<run>[0-9a-f]{32})/artifacts/(?P<path>.+?)/?$")
_PROMPT_TAGS = frozenset({"mlflow.prompt.is_prompt", "mlflow.prompt.text"})
_LOGGED = re.compile(r"^models:/(?P<model>m-[^/]+)/?$")


def download_uri(name: str, version: int) -> str:
    """Where the MLflow client downloads a version's files: the artifacts proxy."""
    return f"mlflow-artifacts:/model-versions/{name}/{version}"


def version_json(ws: Workspace, v: ModelVersion) -> dict[str, Any]:
    """A version in MLflow's shape; its ``source`` is the logged model it came from, or the run's
    folder."""
    path, logged = mlflow_format.version_origin(v, workspace=ws)
    if logged is not None:
        source = f"models:/{logged.model_id}"
    elif v.run_id is not None:
        source = f"runs:/{v.run_id}/{path}"
    else:
        source = download_uri(v.name, v.version)
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.created_at,
        "last_updated_timestamp": v.created_at,
        "user_id": v.user,
        "current_stage": "None",
        "source": source,
        "status": "READY",
        "tags": pairs(v.tags),
        "aliases": list(v.aliases),
    }
    if v.description:
        out["description"] = v.description
    if v.run_id:
        out["run_id"] = v.run_id
    if logged is not None:
        out["model_id"] = logged.model_id
    return out


def model_json(ws: Workspace, m: RegisteredModel) -> dict[str, Any]:
    """A registered model in MLflow's shape, with its newest version as ``latest_versions``."""
    out: dict[str, Any] = {
        "name": m.name,
        "creation_timestamp": m.created_at,
        "last_updated_timestamp": m.updated_at,
        "tags": pairs(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
        "latest_versions": [],
    }
    if m.description:
        out["description"] = m.description
    if m.latest_version is not None:
        latest = reg.get_version(m.name, m.latest_version, workspace=ws)
        out["latest_versions"] = [version_json(ws, latest)]
    return out


# -- registered models ----------------------------------------------------------------------


def create_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    _not_a_prompt(p)
    try:
        m = reg.create_model(
            name, p.text("description"), tags=p.key_values("tags") or None, workspace=ws
        )
    except Conflict as exc:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", exc.message) from None
    return {"registered_model": model_json(ws, m)}


def _not_a_prompt(p: Params) -> None:
    """MLflow's prompt registry keeps prompts as registered models tagged so; Cauce keeps them
    in a registry of their own, which this API does not reach."""
    if _PROMPT_TAGS & set(p.key_values("tags")):
        raise unsupported(
            "MLflow's prompt registry (mlflow.genai.register_prompt, load_prompt)",
            ": Cauce keeps prompts in its own registry: cauce prompts, cauce.prompts.register"
            " (labels are its aliases; docs/prompts.md)",
        )


def get_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    m = reg.get_model(p.text("name", required=True), workspace=ws)
    return {"registered_model": model_json(ws, m)}


def search_registered_models(ws: Workspace, p: Params) -> dict[str, Any]:
    found = reg.list_models(workspace=ws)
    text = p.text("filter")
    if text:
        found = [m for m in found if matches({"name": m.name}, text, m.tags)]
    _order(
        found,
        p,
        {
            "name": "name",
            "timestamp": "updated_at",
            "last_updated_timestamp": "updated_at",
            "creation_timestamp": "created_at",
        },
    )
    return page(p, found, lambda m: model_json(ws, m), "registered_models", default_max=100)


def update_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    m = reg.update_model(name, description=p.text("description", default=""), workspace=ws)
    return {"registered_model": model_json(ws, m)}


def delete_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    raise unsupported(
        "deleting registered models",
        ": Cauce keeps every version (deployments and lineage refer to them); "
        "delete its aliases instead",
    )


def set_registered_model_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    reg.set_model_tag(
        p.text("name", required=True),
        p.text("key", required=True),
        p.text("value", default=""),
        workspace=ws,
    )
    return {}


def get_latest_versions(ws: Workspace, p: Params) -> dict[str, Any]:
    m = reg.get_model(p.text("name", required=True), workspace=ws)
    stages = [str(s).lower() for s in p.repeated("stages")]
    if m.latest_version is None or (stages and "none" not in stages):
        return {"model_versions": []}
    return {
        "model_versions": [
            version_json(ws, reg.get_version(m.name, m.latest_version, workspace=ws))
        ]
    }


# -- versions -------------------------------------------------------------------------------


def create_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    _not_a_prompt(p)
    source = p.text("source", required=True)
    tags = p.key_values("tags") or None
    description = p.text("description")
    model_id = p.text("model_id")
    found = _LOGGED.match(source)
    if model_id or found:
        v = mlflow_format.register_logged_model(
            model_id or found["model"],  # type: ignore[index]
            name,
            description=description,
            tags=tags,
            workspace=ws,
        )
        return {"model_version": version_json(ws, v)}
    found = _RUNS.match(source) or _PROXY.match(source)
    if found is None:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"cannot register {source!r}: cauce server registers models:/<model id>, "
            "runs:/<run id>/<path> and its own mlflow-artifacts:/ folders",
        )
    run_id = p.text("run_id")
    if run_id and run_id != found["run"]:
        raise InvalidInput(
            f"source {source!r} is not a folder of run {run_id}", details={"field": "source"}
        )
    v = mlflow_format.register_run_model(
        found["run"], found["path"], name, description=description, tags=tags, workspace=ws
    )
    return {"model_version": version_json(ws, v)}


def _version_of(ws: Workspace, p: Params) -> ModelVersion:
    version = p.text("version", required=True)
    if not version.isdigit():
        raise MlflowError("INVALID_PARAMETER_VALUE", f"version must be a number, not {version!r}")
    return reg.get_version(p.text("name", required=True), int(version), workspace=ws)


def get_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    return {"model_version": version_json(ws, _version_of(ws, p))}


def update_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    v = _version_of(ws, p)
    v = reg.update_version(
        v.name, v.version, description=p.text("description", default=""), workspace=ws
    )
    return {"model_version": version_json(ws, v)}


def search_model_versions(ws: Workspace, p: Params) -> dict[str, Any]:
    text = p.text("filter") or ""
    found: list[ModelVersion] = []
    for m in reg.list_models(workspace=ws):
        for v in reg.versions(m.name, workspace=ws):
            fields = {"name": v.name, "run_id": v.run_id, "version_number": str(v.version)}
            if not text or matches(fields, text, v.tags):
                found.append(v)
    found.sort(key=lambda v: (v.name, -v.version))
    _order(
        found,
        p,
        {
            "name": "name",
            "version_number": "version",
            "creation_timestamp": "created_at",
            "last_updated_timestamp": "created_at",
        },
    )
    return page(p, found, lambda v: version_json(ws, v), "model_versions", default_max=10000)


def get_download_uri(ws: Workspace, p: Params) -> dict[str, Any]:
    v = _version_of(ws, p)
    return {"artifact_uri": download_uri(v.name, v.version)}


def set_model_version_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    v = _version_of(ws, p)
    reg.set_version_tag(
        v.name, v.version, p.text("key", required=True), p.text("value", default=""), workspace=ws
    )
    return {}


def delete_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    raise unsupported("deleting model versions", ": Cauce's versions are immutable")


def transition_stage(ws: Workspace, p: Params) -> dict[str, Any]:
    raise unsupported("stages", ": use aliases (set_registered_model_alias)")


# -- aliases --------------------------------------------------------------------------------


def set_alias(ws: Workspace, p: Params) -> dict[str, Any]:
    version = p.text("version", required=True)
    if not version.isdigit():
        raise MlflowError("INVALID_PARAMETER_VALUE", f"version must be a number, not {version!r}")
    reg.set_alias(
        p.text("name", required=True), p.text("alias", required=True), int(version), workspace=ws
    )
    return {}


def delete_alias(ws: Workspace, p: Params) -> dict[str, Any]:
    reg.delete_alias(p.text("name", required=True), p.text("alias", required=True), workspace=ws)
    return {}


def get_by_alias(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    v = reg.resolve(f"models:/{name}@{p.text('alias', required=True)}", workspace=ws)
    return {"model_version": version_json(ws, v)}


def _order(items: list[Any], p: Params, columns: dict[str, str]) -> None:
    for clause in reversed([str(o) for o in p.repeated("order_by")]):
        field, _, direction = clause.strip().partition(" ")
        column = columns.get(field.removeprefix("attributes."))
        if column is None:
            raise MlflowError(
                "INVALID_PARAMETER_VALUE",
                f"cannot order by {field}; use {', '.join(sorted(columns))}",
            )
        items.sort(key=attrgetter(column), reverse=direction.strip().upper() == "DESC")


ROUTES: list[tuple[str, tuple[str, ...], Handler]] = [
    ("/registered-models/create", ("POST",), create_registered_model),
    ("/registered-models/get", ("GET",), get_registered_model),
    ("/registered-models/search", ("GET",), search_registered_models),
    ("/registered-models/update", ("PATCH",), update_registered_model),
    ("/registered-models/delete", ("DELETE",), delete_registered_model),
    ("/registered-models/set-tag", ("POST",), set_registered_model_tag),
    ("/registered-models/get-latest-versions", ("POST", "GET"), get_latest_versions),
    ("/registered-models/alias", ("POST",), set_alias),
    ("/registered-models/alias", ("DELETE",), delete_alias),
    ("/registered-models/alias", ("GET",), get_by_alias),
    ("/model-versions/create", ("POST",), create_model_version),
    ("/model-versions/get", ("GET",), get_model_version),
    ("/model-versions/update", ("PATCH",), update_model_version),
    ("/model-versions/search", ("GET",), search_model_versions),
    ("/model-versions/get-download-uri", ("GET",), get_download_uri),
    ("/model-versions/set-tag", ("POST",), set_model_version_tag),
    ("/model-versions/delete", ("DELETE",), delete_model_version),
    ("/model-versions/transition-stage", ("POST",), transition_stage),
]
