"""KServe: one ``serving.kserve.io/v1beta1`` InferenceService for the endpoint.

Its custom predictor runs the deployment with the most traffic; when a second deployment takes
traffic, a second revision of the same InferenceService with ``canaryTrafficPercent``, applied
once the first is Ready. What KServe cannot express is listed in the export's warnings (and in
the manifest's ``cauce.dev/not-expressed`` annotation), never dropped silently.
"""

from __future__ import annotations

import math
from typing import Any

from cauce.errors import InvalidInput
from cauce.serving.endpoints import Deployment, Endpoint
from cauce.serving.targets.base import (
    LIVE_PATH,
    METRICS_PATH,
    PORT,
    READY_PATH,
    Manifests,
    Options,
    Target,
    container,
    deployment_resources,
    k8s_name,
    object_annotations,
    object_labels,
    object_metadata,
    probe,
    resources_for,
    serve_deployment_args,
)

# KServe appends "-predictor" and Knative a revision ("-00001") to names that must stay
# DNS labels (63): the InferenceService's own name gets what is left.
KSERVE_NAME_LIMIT = 63 - len("-predictor-00001")


def _ranked(endpoint: Endpoint) -> list[tuple[Deployment, int]]:
    """Deployments with live traffic, most first (ties by name)."""
    live = [(d, endpoint.traffic.get(d.name, 0)) for d in endpoint.deployments]
    return sorted([x for x in live if x[1] > 0], key=lambda x: (-x[1], x[0].name))


def _inference_service(
    endpoint: Endpoint,
    deployment: Deployment,
    options: Options,
    canary_percent: int | None,
    not_expressed: list[str],
) -> dict[str, Any]:
    name = k8s_name(endpoint.name, limit=KSERVE_NAME_LIMIT)
    labels = object_labels(endpoint, name, "inference-service", deployment.name)
    annotations = {
        **object_annotations(endpoint, deployment),
        "serving.kserve.io/enable-prometheus-scraping": "true",
        "prometheus.kserve.io/port": str(PORT),
        "prometheus.kserve.io/path": METRICS_PATH,
    }
    if not_expressed:
        annotations["cauce.dev/not-expressed"] = "\n".join(not_expressed)
    predictor_container = container(
        "kserve-container",
        serve_deployment_args(endpoint, deployment),
        options,
        resources_for(options, deployment.name, deployment_resources(deployment.workers)),
    )
    # Knative serves one port and probes it itself: probes name no port.
    predictor_container["ports"] = [{"containerPort": PORT, "protocol": "TCP"}]
    predictor_container["livenessProbe"] = probe(LIVE_PATH, period=10, failures=3, port=False)
    predictor_container["readinessProbe"] = probe(READY_PATH, period=5, failures=2, port=False)
    del predictor_container["startupProbe"]
    predictor: dict[str, Any] = {
        "minReplicas": 1,  # no scale to zero: a cold start loads the model
        "timeout": max(1, math.ceil(endpoint.timeout_ms / 1000)),
        "containers": [predictor_container],
    }
    if canary_percent is not None:
        predictor["canaryTrafficPercent"] = canary_percent
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": object_metadata(name, options, labels, annotations),
        "spec": {"predictor": predictor},
    }


class KServeTarget(Target):
    """One InferenceService: the stable revision, then the canary one."""

    name = "kserve"

    def manifests(self, endpoint: Endpoint, options: Options) -> Manifests:
        """The endpoint's manifests in apply order, and what was not expressed."""
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
                f"deployment {deployment.name!r} takes {percent}% of live traffic, but KServe "
                "splits between two revisions only: it is not exported and its share goes to "
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
