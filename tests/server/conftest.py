"""Fixtures of the tests that drive the real MLflow client against ``cauce server``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cauce.workspace import Workspace
from mlflow_client import mlflow_at


@pytest.fixture
def mlflow(any_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The ``mlflow`` module, its tracking URI pointing at the server over ``any_workspace``."""
    with mlflow_at(any_workspace, monkeypatch) as module:
        yield module


@pytest.fixture
def client(mlflow: Any) -> Any:
    """An ``MlflowClient`` for the server."""
    return mlflow.MlflowClient()
