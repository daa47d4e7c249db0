"""Deployments: one registered model version served behind an endpoint.

A deployment lives in its endpoint (the endpoint's traffic names it), so the rules that write
one are kept with the endpoint in :mod:`cauce.serving.endpoints`; this is the public face for
reading and deleting them, reachable as ``cauce.deployments``. Create and change deployments
with ``kind: Deployment`` specs (``cauce.apply``).

Example::

    blue = cauce.deployments.get_deployment("churn", "blue")
    print(blue.model_uri, blue.workers)
"""

from __future__ import annotations

from cauce.serving.endpoints import Deployment, delete_deployment, get_deployment, get_endpoint
from cauce.workspace import Workspace

__all__ = ["Deployment", "delete_deployment", "get_deployment", "list_deployments"]


def list_deployments(endpoint: str, *, workspace: Workspace | None = None) -> list[Deployment]:
    """The deployments behind an endpoint, by name."""
    return sorted(get_endpoint(endpoint, workspace=workspace).deployments, key=lambda d: d.name)
