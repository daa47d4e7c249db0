"""Shared pieces of the serving tests: registered models to serve, a workspace per module.

Helpers reach the tests as fixtures (``churn_model``, ``broken_model``): test folders here are
not packages, so a test module cannot import this one.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cauce

COLUMNS = ["age", "charges"]


def churn_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Customers: an integer and a float column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, rows), "charges": rng.normal(50, 10, rows)})


@functools.cache
def fitted_churn_model(c: float = 1.0) -> Any:
    """A LogisticRegression trained on :func:`churn_frame` (fitted once per ``c``)."""
    from sklearn.linear_model import LogisticRegression

    frame = churn_frame()
    labels = (frame["charges"] + frame["age"] * 0.2 > 58).astype(int)
    return LogisticRegression(C=c, solver="liblinear").fit(frame, labels)


def log_churn_model(c: float = 1.0, name: str = "churn") -> Any:
    """Register :func:`fitted_churn_model` as a new version of ``name``; returns the model."""
    model = fitted_churn_model(c)
    with cauce.start_run(experiment=name):
        cauce.log_model(model, "model", registered_model=name, input_example=churn_frame().head(5))
    return model


def log_broken_model(name: str = "broken") -> None:
    """Register a Python model whose every call raises (a deployment that fails when scoring)."""

    def broken(data: Any) -> Any:
        raise RuntimeError("this model always fails")

    with cauce.start_run(experiment=name):
        cauce.log_model(broken, "model", registered_model=name, input_example=churn_frame().head(5))


@pytest.fixture(scope="session")
def churn_model() -> Any:
    """:func:`log_churn_model`: ``churn_model(c=0.1)`` registers one more version."""
    return log_churn_model


@pytest.fixture(scope="session")
def broken_model() -> Any:
    """:func:`log_broken_model`."""
    return log_broken_model
