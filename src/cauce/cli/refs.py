"""Entity references users type: ``models:/churn/3``, ``prompts:/answer@production``,
``runs:/<id>``, ``datasets:/customers@2``, ``artifacts:/<sha256>``.

Resolved here, at the command line, because resolving one reaches the registry, tracking and
data layers.
"""

from __future__ import annotations

from cauce.errors import InvalidInput, NotFound
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
        from cauce.tracking.runs import get_run

        run_id = ref[len("runs:/") :].strip("/").split("/")[0]
        return "run", get_run(run_id, workspace=ws).info.run_id
    if ref.startswith("artifacts:/"):
        return "artifact", _artifact(ref[len("artifacts:/") :].strip("/"), ws)
    if ref.startswith("datasets:/") or "@" in ref:
        from cauce.data.assets import get_version

        return "dataset_version", get_version(ref.removeprefix("datasets:/"), workspace=ws).id
    raise InvalidInput(
        f"cannot tell what {ref!r} names",
        hint="use models:/NAME/VERSION, models:/NAME@ALIAS, prompts:/NAME/VERSION, runs:/RUN_ID, "
        "datasets:/NAME@VERSION or artifacts:/SHA256",
    )


def _artifact(sha256: str, ws: Workspace) -> str:
    """The sha256 of a recorded artifact (a unique prefix of at least 8 characters will do)."""
    from sqlalchemy import select

    from cauce.store.schema import artifacts

    digest = sha256.lower()
    if len(digest) < 8 or len(digest) > 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InvalidInput(
            f"an artifact is named by its sha256 (8 to 64 hex characters), not {sha256!r}"
        )
    with ws.store.read() as conn:
        found = (
            conn.execute(
                select(artifacts.c.sha256).where(artifacts.c.sha256.startswith(digest)).limit(2)
            )
            .scalars()
            .all()
        )
    if not found:
        raise NotFound(f"no artifact with sha256 {digest}")
    if len(found) > 1:
        raise InvalidInput(f"sha256 prefix {digest} names several artifacts: give more of it")
    return str(found[0])
