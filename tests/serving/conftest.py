"""Shared pieces of the serving tests: registered models to serve, workspaces.

Endpoints' control operations (specs applied, traffic moved, rollouts started, promoted and
aborted) and the rollout controller run on a local workspace and through a ``cauce server``:
``workspace`` is local then remote, ``any_workspace`` SQLite, PostgreSQL, then remote. Serving
itself is tested on local workspaces (``module_workspace``: one served endpoint per module), and
against a server in ``test_serving_remote.py``.

Helpers reach the tests as fixtures (``churn_model``, ``broken_model``): test folders here are
not packages, so a test module cannot import this one.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

import cauce
from builders import churn_features
from cauce.workspace import Workspace


@pytest.fixture
def workspace(seam_workspace: Workspace) -> Workspace:
    """The fresh workspace of each test, local and then remote."""
    return seam_workspace


@pytest.fixture
def any_workspace(seam_any_workspace: Workspace) -> Workspace:
    """A fresh workspace on SQLite, on PostgreSQL, then on a ``cauce server``."""
    return seam_any_workspace


@functools.cache
def fitted_churn_model(c: float = 1.0) -> Any:
    """A LogisticRegression trained on :func:`builders.churn_features` (fitted once per ``c``)."""
    from sklearn.linear_model import LogisticRegression

    frame = churn_features()
    labels = (frame["charges"] + frame["age"] * 0.2 > 58).astype(int)
    return LogisticRegression(C=c, solver="liblinear").fit(frame, labels)


def log_churn_model(c: float = 1.0, name: str = "churn") -> Any:
    """Register :func:`fitted_churn_model` as a new version of ``name``; returns the model."""
    model = fitted_churn_model(c)
    with cauce.start_run(experiment=name):
        cauce.log_model(
            model, "model", registered_model=name, input_example=churn_features().head(5)
        )
    return model


def log_broken_model(name: str = "broken") -> None:
    """Register a Python model whose every call raises (a deployment that fails when scoring)."""

    def broken(data: Any) -> Any:
        raise RuntimeError("this model always fails")

    with cauce.start_run(experiment=name):
        cauce.log_model(
            broken, "model", registered_model=name, input_example=churn_features().head(5)
        )


@pytest.fixture(scope="session")
def churn_model() -> Any:
    """:func:`log_churn_model`: ``churn_model(c=0.1)`` registers one more version."""
    return log_churn_model


@pytest.fixture(scope="session")
def broken_model() -> Any:
    """:func:`log_broken_model`."""
    return log_broken_model
