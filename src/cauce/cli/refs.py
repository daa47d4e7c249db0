"""Entity references users type: ``models:/churn/3``, ``prompts:/answer@production``,
``runs:/<id>``, ``datasets:/customers@2``, ``artifacts:/<sha256>``.

Resolved here, at the command line, because resolving one reaches the registry, tracking and
data layers.
"""

from __future__ import annotations

from cauce.errors import InvalidInput
from cauce.workspace import Workspace, current


def resolve(ref: str, *, workspace: Workspace | None = None) -> tuple[str, str]:
    """The ``(kind, id)`` of the entity a reference names."""
    ws = workspace or current()
    if ref.startswith("models:/"):
        from cauce.registry.models import resolve as resolve_model

        return "model_version", resolve_model(ref, workspace=ws).id
    if ref.startswith("prompts:/"):
        from cauce.genai.prompts import load

        return "prompt_version", load(ref, workspace=ws).id
    if ref.startswith("runs:/"):
        from cauce.cli.runs import full_run_id
        from cauce.tracking.runs import get_run

        run_id = full_run_id(ref[len("runs:/") :].strip("/").split("/")[0], workspace=ws)
        return "run", get_run(run_id, workspace=ws).info.run_id
    if ref.startswith("artifacts:/"):
        from cauce.tracking.artifacts import find_artifact

        return "artifact", find_artifact(ref[len("artifacts:/") :].strip("/"), workspace=ws)
    if ref.startswith("datasets:/") or "@" in ref:
        from cauce.data.assets import get_version

        return "dataset_version", get_version(ref.removeprefix("datasets:/"), workspace=ws).id
    raise InvalidInput(
        f"cannot tell what {ref!r} names",
        hint="use models:/NAME/VERSION, models:/NAME@ALIAS, prompts:/NAME/VERSION, runs:/RUN_ID, "
        "datasets:/NAME@VERSION or artifacts:/SHA256",
    )
