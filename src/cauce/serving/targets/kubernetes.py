"""Kubernetes: plain Deployments and Services running the same commands as on a laptop.

A router Deployment + Service named after the endpoint, and a Deployment + Service per
deployment:

- router: ``cauce endpoints serve ENDPOINT --host 0.0.0.0 --port 8080 --no-deployments
  --deployment-url NAME=http://SERVICE:8080 ...`` (one URL per deployment);
- each deployment: ``cauce deployments serve ENDPOINT NAME --host 0.0.0.0 --port 8080``, which
  starts the deployment's ``workers`` itself (so ``replicas`` is 1 and the resources scale with
  the workers).

Traffic, mirror and rollouts are not in the manifests: the router reads them from the metadata
store, as it does locally.
"""

from __future__ import annotations

from typing import Any

from cauce.serving.endpoints import Deployment, Endpoint
from cauce.serving.targets.base import (
    PORT,
    Manifests,
    Options,
    Resources,
    Target,
    container,
    deployment_resources,
    k8s_name,
    object_annotations,
    object_labels,
    object_metadata,
    resources_for,
    router_resources,
    scrape_annotations,
    selector,
    serve_deployment_args,
)


def _workload(
    endpoint: Endpoint,
    deployment: Deployment | None,
    name: str,
    args: list[str],
    options: Options,
    resources: Resources,
) -> list[dict[str, Any]]:
    """A Deployment and its Service, for the router (deployment None) or one deployment."""
    component = "router" if deployment is None else "deployment"
    labels = object_labels(
        endpoint, name, component, None if deployment is None else deployment.name
    )
    annotations = object_annotations(endpoint, deployment)
    matching = selector(labels)
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(name, options, labels, annotations),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": matching},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {**annotations, **scrape_annotations()},
                },
                "spec": {
                    "containers": [container(component, args, options, resources)],
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_metadata(name, options, dict(labels), dict(annotations)),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(matching),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [workload, service]


class KubernetesTarget(Target):
    """A router Deployment + Service named after the endpoint, and one per deployment."""

    name = "kubernetes"

    def manifests(self, endpoint: Endpoint, options: Options) -> Manifests:
        """The endpoint's manifests in apply order, and what was not expressed."""
        manifests: list[dict[str, Any]] = []
        urls: list[str] = []
        for deployment in endpoint.deployments:
            name = k8s_name(endpoint.name, deployment.name)
            urls += ["--deployment-url", f"{deployment.name}=http://{name}:{PORT}"]
            resources = resources_for(
                options, deployment.name, deployment_resources(deployment.workers)
            )
            args = serve_deployment_args(endpoint, deployment)
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
            resources_for(options, "router", router_resources()),
        )
        warnings = []
        if not endpoint.deployments:
            warnings.append(
                f"endpoint {endpoint.name!r} has no deployments: only its router is exported, and "
                "it has nothing to route to; apply a Deployment spec and export again"
            )
        # The router first: its Service is the endpoint's address.
        return router + manifests, warnings
