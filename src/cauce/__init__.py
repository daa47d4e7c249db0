"""Cauce: a local-first operations platform for AI workloads.

The public SDK lives in this one namespace; each name is imported on first use so that
``import cauce`` stays fast (no SQLAlchemy, pandas or scikit-learn until they are needed).

Example::

    import cauce

    with cauce.start_run(experiment="churn") as run:
        cauce.log_params({"C": 0.5})
        cauce.log_metric("auc", 0.91, step=3)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS: dict[str, str] = {
    # tracking
    "start_run": "cauce.tracking.fluent",
    "end_run": "cauce.tracking.fluent",
    "set_experiment": "cauce.tracking.fluent",
    "active_run": "cauce.tracking.fluent",
    "last_active_run": "cauce.tracking.fluent",
    "log_metric": "cauce.tracking.fluent",
    "log_metrics": "cauce.tracking.fluent",
    "log_param": "cauce.tracking.fluent",
    "log_params": "cauce.tracking.fluent",
    "set_tag": "cauce.tracking.fluent",
    "set_tags": "cauce.tracking.fluent",
    "log_artifact": "cauce.tracking.fluent",
    "log_artifacts": "cauce.tracking.fluent",
    "log_text": "cauce.tracking.fluent",
    "log_dict": "cauce.tracking.fluent",
    "log_table": "cauce.tracking.fluent",
    "log_image": "cauce.tracking.fluent",
    "log_figure": "cauce.tracking.fluent",
    "log_input": "cauce.tracking.fluent",
    "get_run": "cauce.tracking.runs",
    "get_metric_history": "cauce.tracking.runs",
    "search_runs": "cauce.tracking.fluent",
    "create_experiment": "cauce.tracking.experiments",
    "get_experiment": "cauce.tracking.experiments",
    "list_experiments": "cauce.tracking.experiments",
    "set_experiment_tags": "cauce.tracking.experiments",
    "delete_experiment_tag": "cauce.tracking.experiments",
    "list_artifacts": "cauce.tracking.artifacts",
    "download_artifacts": "cauce.tracking.artifacts",
    "sweep": "cauce.tracking.sweep",
    # registry
    "log_model": "cauce.registry.logging",
    "autolog": "cauce.registry.autolog",
    # specs: cauce apply -f
    "apply": "cauce.specs",
    # the team server: work through it (as CAUCE_SERVER_URL does)
    "set_server": "cauce.workspace",
    # pipelines
    "step": "cauce.pipelines.decorators",
    "pipeline": "cauce.pipelines.decorators",
    "flow": "cauce.genai.flows",
    # errors
    "CauceError": "cauce.errors",
    "NotFound": "cauce.errors",
    "AlreadyExists": "cauce.errors",
    "InvalidInput": "cauce.errors",
    "Conflict": "cauce.errors",
    "QualityGateFailed": "cauce.errors",
    "IntegrityError": "cauce.errors",
    "BackendError": "cauce.errors",
    "ValidationFailed": "cauce.errors",
    "ModelError": "cauce.errors",
}
# Submodules reachable as attributes, e.g. cauce.models.load(...), cauce.rollouts.status(...);
# each lists its public names in __all__.
_SUBMODULES = {
    "data": "cauce.data",
    "lineage": "cauce.lineage",
    "models": "cauce.registry.models",
    "evaluations": "cauce.registry.evaluations",
    "gates": "cauce.registry.gates",
    "prompts": "cauce.genai.prompts",
    "connections": "cauce.genai.connections",
    "catalog": "cauce.genai.catalog",
    "tracing": "cauce.genai.tracing",
    "flows": "cauce.genai.flows",
    "batches": "cauce.genai.batches",
    "evals": "cauce.genai.evals",
    "indexes": "cauce.genai.indexes",
    "llms": "cauce.genai.llms",
    "safety": "cauce.genai.safety",
    "endpoints": "cauce.serving.endpoints",
    "deployments": "cauce.serving.deployments",
    "rollouts": "cauce.serving.rollouts",
    "export": "cauce.serving.export",
    "monitors": "cauce.monitoring.monitors",
    "alerts": "cauce.monitoring.alerts",
    "workspace": "cauce.workspace",
}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'cauce' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors: the same names
    from cauce import data as data
    from cauce import lineage as lineage
    from cauce import workspace as workspace
    from cauce.errors import AlreadyExists as AlreadyExists
    from cauce.errors import BackendError as BackendError
    from cauce.errors import CauceError as CauceError
    from cauce.errors import Conflict as Conflict
    from cauce.errors import IntegrityError as IntegrityError
    from cauce.errors import InvalidInput as InvalidInput
    from cauce.errors import ModelError as ModelError
    from cauce.errors import NotFound as NotFound
    from cauce.errors import QualityGateFailed as QualityGateFailed
    from cauce.errors import ValidationFailed as ValidationFailed
    from cauce.genai import batches as batches
    from cauce.genai import catalog as catalog
    from cauce.genai import connections as connections
    from cauce.genai import evals as evals
    from cauce.genai import flows as flows
    from cauce.genai import indexes as indexes
    from cauce.genai import llms as llms
    from cauce.genai import prompts as prompts
    from cauce.genai import safety as safety
    from cauce.genai import tracing as tracing
    from cauce.genai.flows import flow as flow
    from cauce.monitoring import alerts as alerts
    from cauce.monitoring import monitors as monitors
    from cauce.pipelines.decorators import pipeline as pipeline
    from cauce.pipelines.decorators import step as step
    from cauce.registry import evaluations as evaluations
    from cauce.registry import gates as gates
    from cauce.registry import models as models
    from cauce.registry.autolog import autolog as autolog
    from cauce.registry.logging import log_model as log_model
    from cauce.serving import deployments as deployments
    from cauce.serving import endpoints as endpoints
    from cauce.serving import export as export
    from cauce.serving import rollouts as rollouts
    from cauce.specs import apply as apply
    from cauce.tracking.artifacts import download_artifacts as download_artifacts
    from cauce.tracking.artifacts import list_artifacts as list_artifacts
    from cauce.tracking.experiments import create_experiment as create_experiment
    from cauce.tracking.experiments import delete_experiment_tag as delete_experiment_tag
    from cauce.tracking.experiments import get_experiment as get_experiment
    from cauce.tracking.experiments import list_experiments as list_experiments
    from cauce.tracking.experiments import set_experiment_tags as set_experiment_tags
    from cauce.tracking.fluent import active_run as active_run
    from cauce.tracking.fluent import end_run as end_run
    from cauce.tracking.fluent import last_active_run as last_active_run
    from cauce.tracking.fluent import log_artifact as log_artifact
    from cauce.tracking.fluent import log_artifacts as log_artifacts
    from cauce.tracking.fluent import log_dict as log_dict
    from cauce.tracking.fluent import log_figure as log_figure
    from cauce.tracking.fluent import log_image as log_image
    from cauce.tracking.fluent import log_input as log_input
    from cauce.tracking.fluent import log_metric as log_metric
    from cauce.tracking.fluent import log_metrics as log_metrics
    from cauce.tracking.fluent import log_param as log_param
    from cauce.tracking.fluent import log_params as log_params
    from cauce.tracking.fluent import log_table as log_table
    from cauce.tracking.fluent import log_text as log_text
    from cauce.tracking.fluent import search_runs as search_runs
    from cauce.tracking.fluent import set_experiment as set_experiment
    from cauce.tracking.fluent import set_tag as set_tag
    from cauce.tracking.fluent import set_tags as set_tags
    from cauce.tracking.fluent import start_run as start_run
    from cauce.tracking.runs import get_metric_history as get_metric_history
    from cauce.tracking.runs import get_run as get_run
    from cauce.tracking.sweep import sweep as sweep
    from cauce.workspace import set_server as set_server
