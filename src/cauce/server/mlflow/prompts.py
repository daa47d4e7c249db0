"""MLflow's prompt registry over Cauce's prompts.

MLflow keeps a prompt as a registered model tagged ``mlflow.prompt.is_prompt`` whose versions
hold the template in the tag ``mlflow.prompt.text``, and its client
(``mlflow.genai.register_prompt``, ``load_prompt``, ``search_prompts``, prompt aliases) calls
the model registry's routes. :mod:`.registry` hands the calls that name a prompt to this module,
which reads and writes Cauce's prompts: a text template is one user message, a chat template
its messages, MLflow's model configuration the version's model parameters, aliases its labels.
A prompt registered from MLflow is a Cauce prompt (``cauce prompts``, flows, evaluations), and
a Cauce prompt loads in MLflow.

MLflow's own version tags (the template's type, the model configuration, a response format) are
kept on the version only where its content would not give them back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cauce.errors import InvalidInput, NotFound
from cauce.genai import prompts
from cauce.genai.prompts import Prompt, PromptVersion
from cauce.registry import models as reg
from cauce.server.mlflow.wire import MlflowError, Params, model_version, registered_model
from cauce.workspace import Workspace

IS_PROMPT = "mlflow.prompt.is_prompt"
TEXT = "mlflow.prompt.text"
TYPE = "_mlflow_prompt_type"
MODEL_CONFIG = "_mlflow_prompt_model_config"
RESPONSE_FORMAT = "_mlflow_prompt_response_format"
_ASKS_FOR_PROMPTS = re.compile(
    r"tags?\.`?mlflow\.prompt\.is_prompt`?\s*=\s*'true'", flags=re.IGNORECASE
)
# MLflow's model configuration fields that are Cauce's model parameters under another name.
_RENAMED = {"model_name": "model", "stop_sequences": "stop"}
_SAME = ("temperature", "max_tokens", "top_p")


def is_prompt_request(p: Params) -> bool:
    """Whether a create call carries MLflow's prompt tag."""
    return str(p.key_values("tags").get(IS_PROMPT, "false")).lower() == "true"


def asks_for_prompts(text: str | None) -> bool:
    """Whether a search filter asks for prompts, which MLflow's searches leave out otherwise."""
    return bool(text) and _ASKS_FOR_PROMPTS.search(text or "") is not None


def named(ws: Workspace, name: str) -> Prompt | None:
    """The prompt an MLflow registry call names: a prompt of that name when no registered
    model has it (MLflow has one namespace for both, Cauce two)."""
    try:
        reg.get_model(name, workspace=ws)
        return None
    except NotFound:
        pass
    try:
        return prompts.get_prompt(name, workspace=ws)
    except NotFound:
        return None


def model_json(ws: Workspace, prompt: Prompt) -> dict[str, Any]:
    """A prompt as MLflow's registered model, with its newest version as ``latest_versions``."""
    latest = None
    if prompt.latest_version:
        latest = version_json(prompts.get_version(prompt.name, prompt.latest_version, workspace=ws))
    tags = {**prompt.tags, IS_PROMPT: "true"}
    return registered_model(
        prompt.name,
        prompt.created_at,
        prompt.updated_at,
        tags,
        prompt.labels,
        prompt.description,
        latest,
    )


def version_json(v: PromptVersion) -> dict[str, Any]:
    """A prompt version as MLflow's model version: its template in ``mlflow.prompt.text``."""
    tags = {**_mlflow_tags(v.messages, v.model_parameters, v.tags.get(TYPE)), **v.tags}
    aliases = [label for label in v.labels if label != "latest"]
    return model_version(
        v.name, v.version, v.created_at, v.user, v.uri, tags, aliases, v.commit_message
    )


def create(ws: Workspace, p: Params) -> dict[str, Any]:
    """``create_registered_model`` with the prompt tag: a prompt with no version yet."""
    tags = {k: v for k, v in p.key_values("tags").items() if k != IS_PROMPT}
    prompt = prompts.create_prompt(
        p.text("name", required=True), description=p.text("description"), tags=tags, workspace=ws
    )
    return {"registered_model": model_json(ws, prompt)}


def create_version(ws: Workspace, p: Params) -> dict[str, Any]:
    """``create_model_version`` with the prompt tag: the template becomes a version's messages
    (the same content as the newest version returns that version, as ``cauce.prompts.register``
    does)."""
    name = p.text("name", required=True)
    prompt = named(ws, name)
    if prompt is None:
        raise NotFound(f"no prompt named {name!r}", hint="create_registered_model creates it")
    tags = dict(p.key_values("tags"))
    tags.pop(IS_PROMPT, None)
    if TEXT not in tags:
        raise InvalidInput(f"a prompt version needs the tag {TEXT}", details={"field": "tags"})
    messages = _messages(tags.pop(TEXT), tags.get(TYPE))
    config = _model_config(tags.get(MODEL_CONFIG))
    parameters = _parameters(config)
    derived = _mlflow_tags(messages, parameters)
    for key in (TYPE, MODEL_CONFIG):  # kept only where the content does not give them back
        if key in tags and key in derived and _same(key, derived[key], tags[key]):
            del tags[key]
    if prompt.latest_version:
        _no_second_meaning(
            prompts.get_version(name, prompt.latest_version, workspace=ws),
            messages,
            parameters,
            tags,
        )
    version = prompts.register(
        name,
        messages,
        model_parameters=parameters,
        commit_message=p.text("description"),
        tags=tags,
        workspace=ws,
    )
    return {"model_version": version_json(version)}


def _no_second_meaning(
    newest: PromptVersion,
    messages: list[dict[str, str]],
    parameters: dict[str, Any],
    tags: dict[str, str],
) -> None:
    """Refuse a template the newest version already holds (Cauce keeps one version per
    content, and would return that one) with other MLflow settings than it keeps: a provider,
    ``top_k``, a response format would change what that version means."""
    if newest.messages != messages or newest.model_parameters != parameters:
        return
    changed = [
        k for k in (TYPE, MODEL_CONFIG, RESPONSE_FORMAT) if tags.get(k) != newest.tags.get(k)
    ]
    if changed:
        raise MlflowError(
            "INVALID_PARAMETER_VALUE",
            f"prompt {newest.name!r} version {newest.version} has this template and these model "
            f"parameters, with other {', '.join(changed)}: Cauce keeps one version per content, "
            "so change the template or the parameters it holds (model, temperature, max_tokens, "
            "top_p, stop, seed)",
        )


def _same(key: str, derived: str, given: str) -> bool:
    if key == MODEL_CONFIG:
        return bool(json.loads(derived) == json.loads(given))
    return derived == given


def _messages(text: str, kind: str | None) -> list[dict[str, str]]:
    if kind != "chat":
        return [{"role": "user", "content": text}]
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, list) or not all(isinstance(m, dict) for m in found):
        raise InvalidInput(
            f"a chat prompt's {TEXT} must be a JSON list of messages", details={"field": TEXT}
        )
    return [{"role": m.get("role"), "content": m.get("content")} for m in found]


def _model_config(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise InvalidInput(f"{MODEL_CONFIG} must be a JSON object", details={"field": MODEL_CONFIG})
    return found


def _parameters(config: dict[str, Any]) -> dict[str, Any]:
    """Cauce's model parameters from MLflow's model configuration (what it holds of them)."""
    out = {_RENAMED.get(k, k): v for k, v in config.items() if k in _RENAMED or k in _SAME}
    extra = config.get("extra_params")
    if isinstance(extra, dict) and "seed" in extra:
        out["seed"] = extra["seed"]
    return {k: v for k, v in out.items() if v is not None}


def _mlflow_tags(
    messages: list[dict[str, str]], parameters: dict[str, Any], kind: str | None = None
) -> dict[str, str]:
    """MLflow's tags for a version's content: the template, its type (one user message is a
    text template unless ``kind`` says chat), the model configuration."""
    if kind != "chat" and len(messages) == 1 and messages[0]["role"] == "user":
        tags = {TEXT: messages[0]["content"], TYPE: "text"}
    else:
        tags = {TEXT: json.dumps(messages), TYPE: "chat"}
    tags[IS_PROMPT] = "true"
    config = {k: v for k, v in parameters.items() if k in _SAME}
    config.update(
        {mlflow: parameters[ours] for mlflow, ours in _RENAMED.items() if ours in parameters}
    )
    if "seed" in parameters:
        config["extra_params"] = {"seed": parameters["seed"]}
    if config:
        tags[MODEL_CONFIG] = json.dumps(config)
    return tags


def version_of(ws: Workspace, name: str, version: str) -> PromptVersion:
    """A prompt version by number (MLflow sends it as text)."""
    if not version.isdigit():
        raise MlflowError("INVALID_PARAMETER_VALUE", f"version must be a number, not {version!r}")
    return prompts.get_version(name, int(version), workspace=ws)


def search_versions(ws: Workspace) -> list[PromptVersion]:
    """Every version of every prompt, for ``search_model_versions``."""
    return [
        v
        for p in prompts.list_prompts(workspace=ws)
        for v in prompts.versions(p.name, workspace=ws)
    ]
