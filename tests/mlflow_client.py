"""The real MLflow client pointed at ``cauce server``'s app, served by uvicorn on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cauce.workspace import Workspace
from optional import need
from served import app_server


@contextmanager
def mlflow_at(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The ``mlflow`` module, its tracking URI pointing at the server's app over ``workspace``."""
    module = need("mlflow", extra="dev")
    with app_server(workspace) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        # set_experiment writes MLFLOW_EXPERIMENT_ID into the environment: undone afterwards.
        monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "")
        monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
        try:
            yield module
        finally:
            reset_mlflow(module)


def reset_mlflow(module: Any) -> None:
    """End the client's runs and forget its active experiment and active model (the next
    test's workspace has neither)."""
    while module.active_run() is not None:
        module.end_run()
    module.tracking.fluent._active_experiment_id = None
    module.clear_active_model()


def error_code(exc: pytest.ExceptionInfo[Any]) -> str:
    """The MLflow error code an ``MlflowException`` carries."""
    code: str = exc.value.error_code
    return code


def mlflow_app(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    """An application using MLflow, run in a process of its own with ``env`` (its tracing's
    state is global); it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
