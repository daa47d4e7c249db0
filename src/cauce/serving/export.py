"""Export an endpoint as Kubernetes manifests: plain Deployments and Services, or KServe.

``kubernetes``: a router Deployment + Service named after the endpoint, and a Deployment +
Service per deployment, running the same commands as ``cauce endpoints serve`` does locally:

- router: ``cauce endpoints serve ENDPOINT --host 0.0.0.0 --port 8080 --no-deployments
  --deployment-url NAME=http://SERVICE:8080 ...`` (one URL per deployment);
- each deployment: ``cauce deployments serve ENDPOINT NAME --host 0.0.0.0 --port 8080``, which
  starts the deployment's ``workers`` itself (so ``replicas`` is 1 and the resources scale with
  the workers).

Every container reads the workspace (``CAUCE_DB_URL``, ``CAUCE_ARTIFACTS`` and any other
variable such as ``AWS_*`` credentials) from one Secret, named by ``workspace_secret``; no value
is ever written into a manifest. Traffic, mirror and rollouts are not in the manifests: the
router reads them from the metadata store, as it does locally.

``kserve``: one ``serving.kserve.io/v1beta1`` ``InferenceService`` whose custom predictor runs
the deployment with the most traffic; when a second deployment takes traffic, a second revision
of the same InferenceService with ``canaryTrafficPercent``, applied once the first is Ready.
What KServe cannot express is listed in the export's ``warnings`` (and logged), never dropped
silently. See docs/serving-kubernetes.md.

Example::

    from cauce.serving.export import export

    result = export("churn", format="kubernetes", output="deploy/churn.yaml")
    for warning in result.warnings:
        print(warning)
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cauce.errors import InvalidInput
from cauce.serving.endpoints import Deployment, Endpoint, get_endpoint
from cauce.workspace import Workspace

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "ghcr.io/cauce-ops/cauce:0.1.0"
DEFAULT_SECRET = "cauce-workspace"
PORT = 8080
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"
# KServe appends "-predictor" and Knative a revision ("-00001") to names that must stay
# DNS labels (63): the InferenceService's own name gets what is left.
KSERVE_NAME_LIMIT = 63 - len("-predictor-00001")

_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NOT_LABEL = re.compile(r"[^a-z0-9]+")
_HASH = 8  # hex digits of sha256 appended to a name that sanitising changed

Resources = dict[str, dict[str, str]]


# -- names ------------------------------------------------------------------------------------


def k8s_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1035 label (also a DNS-1123 label) for Cauce names, distinct for distinct inputs.

    Each part is lower-cased and every run of other characters than ``a-z0-9`` becomes one
    ``-``; parts are joined by ``--``, which no sanitised part contains, so that endpoint
    ``a-b`` and deployment ``b`` of endpoint ``a`` cannot meet. A name that this changed, that
    does not start with a letter, or that is longer than ``limit``, is cut and gets ``-`` and
    8 hex digits of the sha256 of the original parts: ``Churn_v2.blue`` → ``churn-v2-blue-…``.

    Example: ``k8s_name("churn", "blue")`` → ``churn--blue``.
    """
    if not parts or limit < _HASH + 2:
        raise ValueError("k8s_name needs at least one part and a limit of 10 or more")
    cleaned = [_NOT_LABEL.sub("-", part.lower()).strip("-") or "x" for part in parts]
    joined = "--".join(cleaned)
    if not joined[0].isalpha():
        joined = "c-" + joined
    if joined == "--".join(parts) and len(joined) <= limit:
        return joined
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_HASH]
    base = joined[: limit - _HASH - 1].rstrip("-")
    return f"{base}-{digest}"


def _check_label(value: str, what: str) -> str:
    if not isinstance(value, str) or len(value) > 63 or not _LABEL.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not a valid Kubernetes name",
            hint="lower-case letters, digits and '-', starting with a letter, at most 63",
        )
    return value


def _check_subdomain(value: str, what: str) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _SUBDOMAIN.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not a valid Kubernetes name",
            hint="lower-case letters, digits, '-' and '.', at most 253 characters",
        )
    return value


# -- the pieces every manifest shares ---------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    image: str
    namespace: str | None
    workspace_secret: str
    resources: Mapping[str, Resources]


def _options(
    endpoint: Endpoint,
    image: str,
    namespace: str | None,
    workspace_secret: str,
    resources: Mapping[str, Resources] | None,
) -> _Options:
    if not isinstance(image, str) or not image.strip() or any(c.isspace() for c in image):
        raise InvalidInput(f"image must be a container image reference, got {image!r}")
    if namespace is not None:
        _check_label(namespace, "namespace")
    _check_subdomain(workspace_secret, "workspace secret")
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
    return _Options(image, namespace, workspace_secret, resources)


def _metadata(
    name: str, options: _Options, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if options.namespace is not None:
        meta["namespace"] = options.namespace
    meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return meta


def _labels(
    endpoint: Endpoint, name: str, component: str, deployment: str | None
) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "cauce",
        "cauce.dev/endpoint": k8s_name(endpoint.name),
    }
    if deployment is not None:
        labels["cauce.dev/deployment"] = k8s_name(deployment)
    return labels


def _selector(labels: dict[str, str]) -> dict[str, str]:
    keep = ("app.kubernetes.io/component", "cauce.dev/endpoint", "cauce.dev/deployment")
    return {k: v for k, v in labels.items() if k in keep}


def _annotations(endpoint: Endpoint, deployment: Deployment | None) -> dict[str, str]:
    # Labels hold sanitised names; the names as Cauce knows them are kept here.
    found = {"cauce.dev/endpoint": endpoint.name}
    if deployment is not None:
        found["cauce.dev/deployment"] = deployment.name
        found["cauce.dev/model"] = f"models:/{deployment.model_name}/{deployment.model_version}"
        found["cauce.dev/model-uri"] = deployment.model_uri
        found["cauce.dev/workers"] = str(deployment.workers)
    return found


def _env(options: _Options) -> dict[str, Any]:
    # The two required keys are named so that a Secret without them stops the pod with a clear
    # event; envFrom passes everything else in the Secret (AWS_*, CAUCE_S3_ENDPOINT_URL, ...).
    secret = options.workspace_secret
    return {
        "env": [
            {"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": var}}}
            for var in ("CAUCE_DB_URL", "CAUCE_ARTIFACTS")
        ],
        "envFrom": [{"secretRef": {"name": secret}}],
    }


def router_resources() -> Resources:
    """The router's default requests and limits: it only forwards requests."""
    return {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi"},
    }


def deployment_resources(workers: int) -> Resources:
    """A deployment's default requests and limits: each worker holds a copy of the model."""
    return {
        "requests": {"cpu": f"{500 * workers}m", "memory": f"{512 * workers + 256}Mi"},
        "limits": {"cpu": str(workers), "memory": f"{1024 * workers + 512}Mi"},
    }


def _resources(options: _Options, key: str, default: Resources) -> Resources:
    given = options.resources.get(key)
    return {k: dict(v) for k, v in (given if given is not None else default).items()}


def _container(
    name: str, args: list[str], options: _Options, resources: Resources
) -> dict[str, Any]:
    return {
        "name": name,
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["cauce"],
        "args": args,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        **_env(options),
        "resources": resources,
        "startupProbe": _probe(LIVE_PATH, period=5, failures=60),  # loading a model takes time
        "livenessProbe": _probe(LIVE_PATH, period=10, failures=3),
        "readinessProbe": _probe(READY_PATH, period=5, failures=2),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _probe(path: str, *, period: int, failures: int, port: bool = True) -> dict[str, Any]:
    get: dict[str, Any] = {"path": path}
    if port:
        get["port"] = "http"
    return {
        "httpGet": get,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _serve_deployment_args(endpoint: Endpoint, deployment: Deployment) -> list[str]:
    return [
        "deployments",
        "serve",
        endpoint.name,
        deployment.name,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
    ]


def _scrape() -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": METRICS_PATH,
    }


# -- kubernetes -------------------------------------------------------------------------------


def _workload(
    endpoint: Endpoint,
    deployment: Deployment | None,
    name: str,
    args: list[str],
    options: _Options,
    resources: Resources,
) -> list[dict[str, Any]]:
    """A Deployment and its Service, for the router (deployment None) or one deployment."""
    component = "router" if deployment is None else "deployment"
    labels = _labels(endpoint, name, component, None if deployment is None else deployment.name)
    annotations = _annotations(endpoint, deployment)
    selector = _selector(labels)
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, options, labels, annotations),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": dict(labels), "annotations": {**annotations, **_scrape()}},
                "spec": {
                    "containers": [_container(component, args, options, resources)],
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, options, dict(labels), dict(annotations)),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [workload, service]


def _kubernetes(endpoint: Endpoint, options: _Options) -> tuple[list[dict[str, Any]], list[str]]:
    manifests: list[dict[str, Any]] = []
    urls: list[str] = []
    for deployment in endpoint.deployments:
        name = k8s_name(endpoint.name, deployment.name)
        urls += ["--deployment-url", f"{deployment.name}=http://{name}:{PORT}"]
        resources = _resources(options, deployment.name, deployment_resources(deployment.workers))
        args = _serve_deployment_args(endpoint, deployment)
        manifests += _workload(endpoint, deployment, name, args, options, resources)
    router_args = [
        "endpoints",
        "serve",
        endpoint.name,
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--no-deployments",
        *urls,
    ]
    router = _workload(
        endpoint,
        None,
        k8s_name(endpoint.name),
        router_args,
        options,
        _resources(options, "router", router_resources()),
    )
    warnings = []
    if not endpoint.deployments:
        warnings.append(
            f"endpoint {endpoint.name!r} has no deployments: only its router is exported, and "
            "it has nothing to route to; apply a Deployment spec and export again"
        )
    # The router first: its Service is the endpoint's address.
    return router + manifests, warnings


# -- kserve -----------------------------------------------------------------------------------


def _ranked(endpoint: Endpoint) -> list[tuple[Deployment, int]]:
    """Deployments with live traffic, most first (ties by name)."""
    live = [(d, endpoint.traffic.get(d.name, 0)) for d in endpoint.deployments]
    return sorted([x for x in live if x[1] > 0], key=lambda x: (-x[1], x[0].name))


def _inference_service(
    endpoint: Endpoint,
    deployment: Deployment,
    options: _Options,
    canary_percent: int | None,
    not_expressed: list[str],
) -> dict[str, Any]:
    name = k8s_name(endpoint.name, limit=KSERVE_NAME_LIMIT)
    labels = _labels(endpoint, name, "inference-service", deployment.name)
    annotations = {
        **_annotations(endpoint, deployment),
        "serving.kserve.io/enable-prometheus-scraping": "true",
        "prometheus.kserve.io/port": str(PORT),
        "prometheus.kserve.io/path": METRICS_PATH,
    }
    if not_expressed:
        annotations["cauce.dev/not-expressed"] = "\n".join(not_expressed)
    container = _container(
        "kserve-container",
        _serve_deployment_args(endpoint, deployment),
        options,
        _resources(options, deployment.name, deployment_resources(deployment.workers)),
    )
    # Knative serves one port and probes it itself: probes name no port.
    container["ports"] = [{"containerPort": PORT, "protocol": "TCP"}]
    container["livenessProbe"] = _probe(LIVE_PATH, period=10, failures=3, port=False)
    container["readinessProbe"] = _probe(READY_PATH, period=5, failures=2, port=False)
    del container["startupProbe"]
    predictor: dict[str, Any] = {
        "minReplicas": 1,  # no scale to zero: a cold start loads the model
        "timeout": max(1, math.ceil(endpoint.timeout_ms / 1000)),
        "containers": [container],
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": _metadata(name, options, labels, annotations),
        "spec": {"predictor": predictor},
    }


def _kserve(endpoint: Endpoint, options: _Options) -> tuple[list[dict[str, Any]], list[str]]:
    ranked = _ranked(endpoint)
    if not ranked:
        raise InvalidInput(
            f"endpoint {endpoint.name!r} takes no live traffic, so there is nothing for an "
            "InferenceService to serve",
            hint=f"give a deployment traffic (cauce endpoints traffic {endpoint.name} NAME=100)"
            " or export --format kubernetes",
        )
    stable = ranked[0][0]
    canary = ranked[1] if len(ranked) > 1 else None
    exported = {stable.name} | ({canary[0].name} if canary else set())
    lost: list[str] = []
    for deployment, percent in ranked[2:]:
        lost.append(
            f"deployment {deployment.name!r} takes {percent}% of live traffic, but KServe splits "
            f"between two revisions only: it is not exported and its share goes to "
            f"{stable.name!r}"
        )
    for name, percent in sorted(endpoint.mirror.items()):
        if percent > 0:
            lost.append(
                f"mirror: {name!r} gets a {percent}% shadow copy of live requests, but KServe "
                f"has no mirrored traffic: {name!r} is not exported"
            )
    mirrored = {n for n, p in endpoint.mirror.items() if p > 0}
    for deployment in endpoint.deployments:
        if deployment.name not in exported | mirrored:
            lost.append(
                f"deployment {deployment.name!r} takes no live traffic (it can only be reached "
                "by targeting it with a header, which KServe cannot do): it is not exported"
            )
    lost.append(
        f"traffic is fixed at export (Cauce's split now: {_split(ranked)}): rollouts and "
        "traffic changes made with Cauce do not reach KServe; export and apply again after each"
    )
    lost.append(
        "Cauce's router is not part of the KServe form, and it is what records each "
        "deployment's statistics (requests, errors, latency) for rollout analysis: they stay "
        "empty; use the Prometheus metrics instead"
    )
    collecting = [d.name for d, _ in ranked[:2] if d.collect]
    if collecting:
        lost.append(
            f"collect: the data collector runs in Cauce's router, so the collect settings of "
            f"{', '.join(map(repr, collecting))} record nothing, and monitors of the endpoint "
            "see no new data"
        )
    first = _inference_service(endpoint, stable, options, None, lost)
    manifests = [first]
    if canary is not None:
        # KServe splits traffic between the last revision that was rolled out and the newest
        # one: the stable deployment must be Ready before the canary revision is applied.
        manifests.append(_inference_service(endpoint, canary[0], options, canary[1], lost))
        lost.append(
            f"canary: {canary[0].name!r} ({canary[1]}%) is a second revision of "
            f"InferenceService {first['metadata']['name']!r}, applied after the first (serving "
            f"{stable.name!r}) is Ready; canaryTrafficPercent needs KServe's Serverless "
            "(Knative) deployment mode"
        )
    return manifests, lost


def _split(ranked: list[tuple[Deployment, int]]) -> str:
    return ", ".join(f"{d.name}={p}" for d, p in ranked)


# -- the formats ------------------------------------------------------------------------------

_Builder = Callable[[Endpoint, _Options], tuple[list[dict[str, Any]], list[str]]]
# Each format: (name, builder). One place to add the next one.
FORMATS: dict[str, _Builder] = {"kubernetes": _kubernetes, "kserve": _kserve}


@dataclass(frozen=True)
class Export:
    """What an export produced: manifests in apply order, the files written, what was lost."""

    format: str
    endpoint: str
    manifests: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)


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
    if format not in FORMATS:
        raise InvalidInput(
            f"unknown export format {format!r}",
            hint=f"known formats: {', '.join(FORMATS)}",
            details={"field": "format"},
        )
    endpoint = get_endpoint(endpoint_name, workspace=workspace)
    options = _options(endpoint, image, namespace, workspace_secret, resources)
    manifests, warnings = FORMATS[format](endpoint, options)
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
    """Export an endpoint in a format of ``FORMATS``; write it to ``output`` when given.

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


# -- writing ----------------------------------------------------------------------------------


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
