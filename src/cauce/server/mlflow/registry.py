"""MLflow's model registry calls over Cauce's registry: registered models, versions, aliases.

A version the MLflow client creates from a logged model or a run's folder is a Cauce version
(immutable, its files checked by sha256, with lineage to the run); an MLflow-format folder gains
a ``cauce-model.yaml`` on the way (``cauce.registry.mlflow_format``), so a Cauce deployment
serves it. Every version downloads through the artifacts proxy at
``mlflow-artifacts:/model-versions/<name>/<version>``. A call that names a prompt (MLflow
keeps prompts as registered models) goes to Cauce's prompts (:mod:`.prompts`).
"""

from __future__ import annotations

import re
from operator import attrgetter
from typing import Any

from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.genai import prompts
from cauce.genai.prompts import Prompt, PromptVersion
from cauce.registry import mlflow_format
from cauce.registry import models as reg
from cauce.registry.models import ModelVersion, RegisteredModel
from cauce.server.mlflow import prompts as mlflow_prompts
from cauce.server.mlflow.tracking import Handler
from cauce.server.mlflow.wire import (
    MlflowError,
    Params,
    matches,
    model_version,
    page,
    registered_model,
    unsupported,
)
from cauce.workspace import Workspace

_RUNS = re.compile(r"^runs:/(?P<run>[^/]+)/(?P<path>.+?)/?$")
_PROXY = re.compile(r"^mlflow-artifacts:/+[^/]+/(?P<run>[0-9a-f]{32})/artifacts/(?P<path>.+?)/?$")
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
    out = model_version(
        v.name, v.version, v.created_at, v.user, source, v.tags, list(v.aliases), v.description
    )
    if v.run_id:
        out["run_id"] = v.run_id
    if logged is not None:
        out["model_id"] = logged.model_id
    return out


def model_json(ws: Workspace, m: RegisteredModel) -> dict[str, Any]:
    """A registered model in MLflow's shape, with its newest version as ``latest_versions``."""
    latest = None
    if m.latest_version is not None:
        latest = version_json(ws, reg.get_version(m.name, m.latest_version, workspace=ws))
    return registered_model(
        m.name, m.created_at, m.updated_at, m.tags, m.aliases, m.description, latest
    )


# -- registered models ----------------------------------------------------------------------


def create_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    try:
        if mlflow_prompts.is_prompt_request(p):
            if _model_named(ws, name):
                raise Conflict(f"a registered model named {name!r} exists")
            return mlflow_prompts.create(ws, p)
        if mlflow_prompts.named(ws, name) is not None:
            raise Conflict(f"a prompt named {name!r} exists")
        m = reg.create_model(
            name, p.text("description"), tags=p.key_values("tags") or None, workspace=ws
        )
    except Conflict as exc:
        raise MlflowError("RESOURCE_ALREADY_EXISTS", exc.message) from None
    return {"registered_model": model_json(ws, m)}


def _model_named(ws: Workspace, name: str) -> bool:
    try:
        reg.get_model(name, workspace=ws)
    except NotFound:
        return False
    return True


def get_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    prompt = mlflow_prompts.named(ws, name)
    if prompt is not None:
        return {"registered_model": mlflow_prompts.model_json(ws, prompt)}
    return {"registered_model": model_json(ws, reg.get_model(name, workspace=ws))}


def search_registered_models(ws: Workspace, p: Params) -> dict[str, Any]:
    text = p.text("filter")
    found: list[Any] = []
    for m in reg.list_models(workspace=ws):
        if not text or matches({"name": m.name}, text, m.tags):
            found.append(m)
    if mlflow_prompts.asks_for_prompts(text):
        for prompt in prompts.list_prompts(workspace=ws):
            tags = {**prompt.tags, mlflow_prompts.IS_PROMPT: "true"}
            if matches({"name": prompt.name}, text or "", tags):
                found.append(prompt)
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
    return page(p, found, lambda m: _any_model_json(ws, m), "registered_models", default_max=100)


def _any_model_json(ws: Workspace, m: RegisteredModel | Prompt) -> dict[str, Any]:
    if isinstance(m, Prompt):
        return mlflow_prompts.model_json(ws, m)
    return model_json(ws, m)


def update_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    description = p.text("description", default="")
    if mlflow_prompts.named(ws, name) is not None:
        prompt = prompts.update_prompt(name, description=description, workspace=ws)
        return {"registered_model": mlflow_prompts.model_json(ws, prompt)}
    m = reg.update_model(name, description=description, workspace=ws)
    return {"registered_model": model_json(ws, m)}


def delete_registered_model(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    if mlflow_prompts.named(ws, name) is not None:
        prompts.delete_prompt(name, workspace=ws)  # only one with no version yet
        return {}
    raise unsupported(
        "deleting registered models",
        ": Cauce keeps every version (deployments and lineage refer to them); "
        "delete its aliases instead",
    )


def set_registered_model_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    name, key = p.text("name", required=True), p.text("key", required=True)
    value = p.text("value", default="")
    if mlflow_prompts.named(ws, name) is not None:
        prompts.set_prompt_tags(name, {key: value}, workspace=ws)
    else:
        reg.set_model_tag(name, key, value, workspace=ws)
    return {}


def delete_registered_model_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    name, key = p.text("name", required=True), p.text("key", required=True)
    if mlflow_prompts.named(ws, name) is not None:
        prompts.delete_prompt_tag(name, key, workspace=ws)
    else:
        reg.delete_model_tag(name, key, workspace=ws)
    return {}


def get_latest_versions(ws: Workspace, p: Params) -> dict[str, Any]:
    name = p.text("name", required=True)
    stages = [str(s).lower() for s in p.repeated("stages")]
    prompt = mlflow_prompts.named(ws, name)
    if prompt is not None:
        if not prompt.latest_version or (stages and "none" not in stages):
            return {"model_versions": []}
        latest = prompts.get_version(name, prompt.latest_version, workspace=ws)
        return {"model_versions": [mlflow_prompts.version_json(latest)]}
    m = reg.get_model(name, workspace=ws)
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
    if mlflow_prompts.is_prompt_request(p):
        return mlflow_prompts.create_version(ws, p)
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


def _prompt_version_of(ws: Workspace, p: Params) -> PromptVersion | None:
    """The prompt version a version call names, when its name is a prompt's."""
    name = p.text("name", required=True)
    if mlflow_prompts.named(ws, name) is None:
        return None
    return mlflow_prompts.version_of(ws, name, p.text("version", required=True))


def get_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    prompt = _prompt_version_of(ws, p)
    if prompt is not None:
        return {"model_version": mlflow_prompts.version_json(prompt)}
    return {"model_version": version_json(ws, _version_of(ws, p))}


def update_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    if _prompt_version_of(ws, p) is not None:
        raise unsupported(
            "changing a prompt version's commit message", ": Cauce's prompt versions are immutable"
        )
    v = _version_of(ws, p)
    v = reg.update_version(
        v.name, v.version, description=p.text("description", default=""), workspace=ws
    )
    return {"model_version": version_json(ws, v)}


def search_model_versions(ws: Workspace, p: Params) -> dict[str, Any]:
    text = p.text("filter") or ""
    found: list[Any] = []
    for m in reg.list_models(workspace=ws):
        for v in reg.versions(m.name, workspace=ws):
            fields = {"name": v.name, "run_id": v.run_id, "version_number": str(v.version)}
            if not text or matches(fields, text, v.tags):
                found.append(v)
    if mlflow_prompts.asks_for_prompts(text):
        for pv in mlflow_prompts.search_versions(ws):
            fields = {"name": pv.name, "run_id": None, "version_number": str(pv.version)}
            if matches(fields, text, {**pv.tags, mlflow_prompts.IS_PROMPT: "true"}):
                found.append(pv)
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
    return page(p, found, lambda v: _any_version_json(ws, v), "model_versions", default_max=10000)


def _any_version_json(ws: Workspace, v: ModelVersion | PromptVersion) -> dict[str, Any]:
    if isinstance(v, PromptVersion):
        return mlflow_prompts.version_json(v)
    return version_json(ws, v)


def get_download_uri(ws: Workspace, p: Params) -> dict[str, Any]:
    if _prompt_version_of(ws, p) is not None:
        raise MlflowError("INVALID_PARAMETER_VALUE", "a prompt version has no files to download")
    v = _version_of(ws, p)
    return {"artifact_uri": download_uri(v.name, v.version)}


def set_model_version_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    key, value = p.text("key", required=True), p.text("value", default="")
    prompt = _prompt_version_of(ws, p)
    if prompt is not None:
        prompts.set_version_tags(prompt.name, prompt.version, {key: value}, workspace=ws)
        return {}
    v = _version_of(ws, p)
    reg.set_version_tag(v.name, v.version, key, value, workspace=ws)
    return {}


def delete_model_version_tag(ws: Workspace, p: Params) -> dict[str, Any]:
    key = p.text("key", required=True)
    prompt = _prompt_version_of(ws, p)
    if prompt is not None:
        prompts.delete_version_tag(prompt.name, prompt.version, key, workspace=ws)
        return {}
    v = _version_of(ws, p)
    reg.delete_version_tag(v.name, v.version, key, workspace=ws)
    return {}


def delete_model_version(ws: Workspace, p: Params) -> dict[str, Any]:
    raise unsupported("deleting model or prompt versions", ": Cauce's versions are immutable")


def transition_stage(ws: Workspace, p: Params) -> dict[str, Any]:
    raise unsupported("stages", ": use aliases (set_registered_model_alias)")


# -- aliases --------------------------------------------------------------------------------


def set_alias(ws: Workspace, p: Params) -> dict[str, Any]:
    name, alias = p.text("name", required=True), p.text("alias", required=True)
    version = p.text("version", required=True)
    if not version.isdigit():
        raise MlflowError("INVALID_PARAMETER_VALUE", f"version must be a number, not {version!r}")
    if mlflow_prompts.named(ws, name) is not None:
        prompts.set_label(name, alias, int(version), workspace=ws)
    else:
        reg.set_alias(name, alias, int(version), workspace=ws)
    return {}


def delete_alias(ws: Workspace, p: Params) -> dict[str, Any]:
    name, alias = p.text("name", required=True), p.text("alias", required=True)
    if mlflow_prompts.named(ws, name) is not None:
        prompts.delete_label(name, alias, workspace=ws)
    else:
        reg.delete_alias(name, alias, workspace=ws)
    return {}


def get_by_alias(ws: Workspace, p: Params) -> dict[str, Any]:
    name, alias = p.text("name", required=True), p.text("alias", required=True)
    if mlflow_prompts.named(ws, name) is not None:
        found = prompts.version_by_label(name, alias, workspace=ws)
        return {"model_version": mlflow_prompts.version_json(found)}
    v = reg.resolve(f"models:/{name}@{alias}", workspace=ws)
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
    ("/registered-models/delete-tag", ("DELETE",), delete_registered_model_tag),
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
    ("/model-versions/delete-tag", ("DELETE",), delete_model_version_tag),
    ("/model-versions/delete", ("DELETE",), delete_model_version),
    ("/model-versions/transition-stage", ("POST",), transition_stage),
]
