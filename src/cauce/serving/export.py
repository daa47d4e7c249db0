"""Export an endpoint as Kubernetes manifests: plain Deployments and Services, or KServe.

Each format is an export target (:mod:`cauce.serving.targets`): ``kubernetes`` runs the router
and every deployment as they run locally; ``kserve`` makes one InferenceService (stable and
canary revisions). Every container reads the workspace (``CAUCE_DB_URL``, ``CAUCE_ARTIFACTS``
and any other variable such as ``AWS_*`` credentials) from one Secret, named by
``workspace_secret``; no value is ever written into a manifest. What a target cannot express is
listed in the export's ``warnings`` (and logged), never dropped silently. See
docs/serving-kubernetes.md.

Example::

    result = cauce.export.export("churn", format="kubernetes", output="deploy/churn.yaml")
    for warning in result.warnings:
        print(warning)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cauce.errors import InvalidInput
from cauce.serving.endpoints import Endpoint, get_endpoint
from cauce.serving.targets.base import (
    Options,
    Resources,
    Target,
    check_label,
    check_subdomain,
)
from cauce.workspace import Workspace

__all__ = [
    "Export",
    "export",
    "export_kserve",
    "export_kubernetes",
    "to_yaml",
]

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "ghcr.io/cauce-ops/cauce:0.1.0"
DEFAULT_SECRET = "cauce-workspace"
# Each format: (name, "module:Class" of its Target). One place to add the next one.
TARGETS: tuple[tuple[str, str], ...] = (
    ("kubernetes", "cauce.serving.targets.kubernetes:KubernetesTarget"),
    ("kserve", "cauce.serving.targets.kserve:KServeTarget"),
)


@dataclass(frozen=True)
class Export:
    """What an export produced: manifests in apply order, the files written, what was lost."""

    format: str
    endpoint: str
    manifests: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)


def _options(
    endpoint: Endpoint,
    image: str,
    namespace: str | None,
    workspace_secret: str,
    resources: Mapping[str, Resources] | None,
) -> Options:
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise InvalidInput(f"image must be a container image reference, got {image!r}")
    if namespace is not None:
        check_label(namespace, "namespace")
    check_subdomain(workspace_secret, "workspace secret")
    resources = dict(resources or {})
    known = {"router", *(d.name for d in endpoint.deployments)}
    unknown = sorted(set(resources) - known)
    if unknown:
        raise InvalidInput(
            f"resources name {', '.join(map(repr, unknown))}, which endpoint "
            f"{endpoint.name!r} does not have",
            hint=f"give resources for: {', '.join(sorted(known))}",
            details={"field": "resources"},
        )
    for name, value in resources.items():
        if not isinstance(value, Mapping) or not set(value) <= {"requests", "limits"}:
            raise InvalidInput(
                f"resources for {name!r} must be a mapping with 'requests' and/or 'limits'",
                details={"field": f"resources.{name}"},
            )
    return Options(image, namespace, workspace_secret, resources)


def _target(format: str) -> Target:
    """The export target registered as ``format``, imported on first use."""
    from cauce.config import load_object

    found = dict(TARGETS).get(format)
    if found is None:
        raise InvalidInput(
            f"unknown export format {format!r}",
            hint=f"known formats: {', '.join(name for name, _ in TARGETS)}",
            details={"field": "format"},
        )
    target: type[Target] = load_object(found, what="export target")
    return target()


def _build(
    endpoint_name: str,
    format: str,
    *,
    image: str,
    namespace: str | None,
    workspace_secret: str,
    resources: Mapping[str, Resources] | None,
    workspace: Workspace | None,
) -> Export:
    target = _target(format)
    endpoint = get_endpoint(endpoint_name, workspace=workspace)
    options = _options(endpoint, image, namespace, workspace_secret, resources)
    manifests, warnings = target.manifests(endpoint, options)
    return Export(format, endpoint.name, manifests, warnings)


def _logged(result: Export) -> list[dict[str, Any]]:
    # The functions that return only manifests log what was lost; export() returns it.
    for warning in result.warnings:
        log.warning("export of %s as %s: %s", result.endpoint, result.format, warning)
    return result.manifests


def export_kubernetes(
    endpoint_name: str,
    *,
    image: str = DEFAULT_IMAGE,
    namespace: str | None = None,
    workspace_secret: str = DEFAULT_SECRET,
    resources: Mapping[str, Resources] | None = None,
    workspace: Workspace | None = None,
) -> list[dict[str, Any]]:
    """Deployment and Service manifests for an endpoint's router and each of its deployments.

    The router's Service is named after the endpoint (``k8s_name(endpoint)``) and is its
    address inside the cluster; each deployment's objects are ``k8s_name(endpoint,
    deployment)``. ``resources`` replaces the default requests and limits of ``"router"`` or of
    a deployment, by name: ``{"blue": {"requests": {"cpu": "2"}, "limits": {...}}}``.

    Example::

        manifests = export_kubernetes("churn", namespace="ml")
    """
    return _logged(
        _build(
            endpoint_name,
            "kubernetes",
            image=image,
            namespace=namespace,
            workspace_secret=workspace_secret,
            resources=resources,
            workspace=workspace,
        )
    )


def export_kserve(
    endpoint_name: str,
    *,
    image: str = DEFAULT_IMAGE,
    namespace: str | None = None,
    workspace_secret: str = DEFAULT_SECRET,
    resources: Mapping[str, Resources] | None = None,
    workspace: Workspace | None = None,
) -> list[dict[str, Any]]:
    """A KServe InferenceService for the endpoint: the stable revision, then the canary one.

    The predictor is a custom container running ``cauce deployments serve`` for the deployment
    with the most live traffic. When a second deployment takes traffic, a second document
    follows: the same InferenceService running that deployment with ``canaryTrafficPercent``
    set to its share; apply it once the first is Ready (KServe splits traffic between the last
    rolled-out revision and the newest, in Serverless mode only).

    KServe cannot express, and this export does not carry (each is in the manifest's
    ``cauce.dev/not-expressed`` annotation, logged as a warning, and in ``export()``'s
    ``warnings``):

    - mirrored (shadow) traffic: the mirrored deployment is not exported;
    - a third (and further) deployment with traffic: not exported, its share goes to the stable;
    - deployments without traffic, which Cauce's router reaches by header targeting;
    - traffic changes and rollouts after the export: the split is fixed in the manifest;
    - what Cauce's router does, since it is not deployed: the data collector (``collect``)
      and the per-deployment statistics that rollout analysis reads.

    An endpoint without live traffic is an InvalidInput: there is nothing to serve.

    Example::

        stable, *canary = export_kserve("churn", namespace="ml")
    """
    return _logged(
        _build(
            endpoint_name,
            "kserve",
            image=image,
            namespace=namespace,
            workspace_secret=workspace_secret,
            resources=resources,
            workspace=workspace,
        )
    )


def export(
    endpoint_name: str,
    *,
    format: str = "kubernetes",
    output: str | Path | None = None,
    image: str = DEFAULT_IMAGE,
    namespace: str | None = None,
    workspace_secret: str = DEFAULT_SECRET,
    resources: Mapping[str, Resources] | None = None,
    workspace: Workspace | None = None,
) -> Export:
    """Export an endpoint in a format of ``TARGETS``; write it to ``output`` when given.

    ``output`` ending in ``.yaml`` or ``.yml`` is one multi-document file; anything else is a
    folder with one file per manifest. When the same object appears twice (KServe's canary
    revision), the second goes into a later step, applied after the first is ready:
    ``NAME.2.yaml`` beside the file, or the folder's ``2/`` subfolder (which ``kubectl apply
    -f FOLDER`` does not read). ``warnings`` lists what the format could not express.

    Example::

        result = export("churn", format="kserve", output="deploy/")
    """
    result = _build(
        endpoint_name,
        format,
        image=image,
        namespace=namespace,
        workspace_secret=workspace_secret,
        resources=resources,
        workspace=workspace,
    )
    if output is None:
        return result
    paths, steps = write(result.manifests, output)
    warnings = list(result.warnings)
    if len(steps) > 1:
        for number, step in enumerate(steps[1:], 2):
            waits = ", ".join(
                f"kubectl wait --for=condition=Ready {m['kind'].lower()}/{m['metadata']['name']}"
                for m in step
            )
            warnings.append(
                f"apply in steps: step {number} ({_step_path(Path(output), number)}) only once "
                f"step {number - 1} is ready ({waits})"
            )
    return Export(result.format, result.endpoint, result.manifests, warnings, paths)


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a mapping used twice is written twice, not as an ``&id001`` anchor."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """The manifests as one multi-document YAML stream, keys in the order they were built."""
    return yaml.dump_all(manifests, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def _steps(manifests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split the manifests where an object repeats: a later revision is a later step."""
    steps: list[list[dict[str, Any]]] = [[]]
    seen: set[tuple[str, str, str, str]] = set()
    for manifest in manifests:
        meta = manifest["metadata"]
        key = (manifest["apiVersion"], manifest["kind"], meta.get("namespace", ""), meta["name"])
        if key in seen:
            steps.append([])
            seen = set()
        seen.add(key)
        steps[-1].append(manifest)
    return steps


def _is_file(output: Path) -> bool:
    return output.suffix in (".yaml", ".yml") and not output.is_dir()


def _step_path(output: Path, number: int) -> Path:
    if number == 1:
        return output
    if _is_file(output):
        return output.with_name(f"{output.stem}.{number}{output.suffix}")
    return output / str(number)


def write(
    manifests: list[dict[str, Any]], output: str | Path
) -> tuple[list[Path], list[list[dict[str, Any]]]]:
    """Write manifests to a ``.yaml`` file or a folder (see ``export``); return paths and steps."""
    output = Path(output)
    steps = _steps(manifests)
    paths: list[Path] = []
    for number, step in enumerate(steps, 1):
        target = _step_path(output, number)
        if _is_file(output):
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_text(target, to_yaml(step))
            paths.append(target)
            continue
        target.mkdir(parents=True, exist_ok=True)
        for manifest in step:
            path = target / f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
            _write_text(path, to_yaml([manifest]))
            paths.append(path)
    return paths, steps


def _write_text(path: Path, text: str) -> None:
    # Temp file + rename: a reader (kubectl, a GitOps controller) never sees half a manifest.
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    temp.replace(path)
