"""Export targets: an endpoint as the manifests of one platform, behind one small interface.

A target is a :class:`Target` subclass with one method, :meth:`Target.manifests`: the
endpoint and the export's options in, the manifests (in apply order) and what the platform
could not express out. Targets are registered by name in :data:`cauce.serving.export.TARGETS`
as ``(name, "module:Class")`` and imported on first use. The pieces every Kubernetes manifest
shares (names, labels, containers, probes, resources, the workspace Secret) live here too.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from cauce.errors import InvalidInput
from cauce.serving.endpoints import Deployment, Endpoint

Manifests = tuple[list[dict[str, Any]], list[str]]


class Target(ABC):
    """An export target."""

    name: ClassVar[str]

    @abstractmethod
    def manifests(self, endpoint: Endpoint, options: Options) -> Manifests:
        """The endpoint's manifests in apply order, and the warnings: what was not expressed."""


PORT = 8080


LIVE_PATH = "/v2/health/live"


READY_PATH = "/v2/health/ready"


METRICS_PATH = "/metrics"


_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


_NOT_LABEL = re.compile(r"[^a-z0-9]+")


_HASH = 8  # hex digits of sha256 appended to a name that sanitising changed


Resources = dict[str, dict[str, str]]


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


def check_label(value: str, what: str) -> str:
    """``value`` when it is a DNS-1035 label, else InvalidInput naming ``what``."""
    if not isinstance(value, str) or len(value) > 63 or not _LABEL.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not a valid Kubernetes name",
            hint="lower-case letters, digits and '-', starting with a letter, at most 63",
        )
    return value


def check_subdomain(value: str, what: str) -> str:
    """``value`` when it is a DNS-1123 subdomain, else InvalidInput naming ``what``."""
    if not isinstance(value, str) or len(value) > 253 or not _SUBDOMAIN.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not a valid Kubernetes name",
            hint="lower-case letters, digits, '-' and '.', at most 253 characters",
        )
    return value


@dataclass(frozen=True)
class Options:
    """What every target is given besides the endpoint (checked by the export)."""

    image: str
    namespace: str | None
    workspace_secret: str
    resources: Mapping[str, Resources]


def object_metadata(
    name: str, options: Options, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    """A manifest's ``metadata``: name, namespace, labels and annotations."""
    meta: dict[str, Any] = {"name": name}
    if options.namespace is not None:
        meta["namespace"] = options.namespace
    meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return meta


def object_labels(
    endpoint: Endpoint, name: str, component: str, deployment: str | None
) -> dict[str, str]:
    """The labels of one object of the endpoint (sanitised names)."""
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "cauce",
        "cauce.dev/endpoint": k8s_name(endpoint.name),
    }
    if deployment is not None:
        labels["cauce.dev/deployment"] = k8s_name(deployment)
    return labels


def selector(labels: dict[str, str]) -> dict[str, str]:
    """The labels that select a workload's pods."""
    keep = ("app.kubernetes.io/component", "cauce.dev/endpoint", "cauce.dev/deployment")
    return {k: v for k, v in labels.items() if k in keep}


def object_annotations(endpoint: Endpoint, deployment: Deployment | None) -> dict[str, str]:
    """Annotations with the names as Cauce knows them (labels hold sanitised ones)."""
    # Labels hold sanitised names; the names as Cauce knows them are kept here.
    found = {"cauce.dev/endpoint": endpoint.name}
    if deployment is not None:
        found["cauce.dev/deployment"] = deployment.name
        found["cauce.dev/model"] = deployment.target
        found["cauce.dev/model-uri"] = deployment.model_uri or deployment.target
        found["cauce.dev/workers"] = str(deployment.workers)
    return found


def _env(options: Options) -> dict[str, Any]:
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


def resources_for(options: Options, key: str, default: Resources) -> Resources:
    """The requests and limits given for ``key`` (router or a deployment), else ``default``."""
    given = options.resources.get(key)
    return {k: dict(v) for k, v in (given if given is not None else default).items()}


def container(name: str, args: list[str], options: Options, resources: Resources) -> dict[str, Any]:
    """A container running ``cauce ARGS`` with the workspace Secret, probes and resources."""
    return {
        "name": name,
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["cauce"],
        "args": args,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        **_env(options),
        "resources": resources,
        "startupProbe": probe(LIVE_PATH, period=5, failures=60),  # loading a model takes time
        "livenessProbe": probe(LIVE_PATH, period=10, failures=3),
        "readinessProbe": probe(READY_PATH, period=5, failures=2),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def probe(path: str, *, period: int, failures: int, port: bool = True) -> dict[str, Any]:
    """An HTTP probe on ``path``."""
    get: dict[str, Any] = {"path": path}
    if port:
        get["port"] = "http"
    return {
        "httpGet": get,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def serve_deployment_args(endpoint: Endpoint, deployment: Deployment) -> list[str]:
    """``cauce`` arguments that serve one deployment in a container."""
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


def scrape_annotations() -> dict[str, str]:
    """Prometheus scrape annotations for a pod."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": METRICS_PATH,
    }
