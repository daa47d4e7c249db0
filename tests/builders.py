"""Seeded tables and specs the tests build their stories on: each written once, the same rows
every run.

Importable from every test module: pytest puts this folder (the root conftest's) on sys.path.
Many tests assert exact numbers computed from these rows: change a builder and their data
changes with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# The contract mix of the customers who stay, and of those after the market moves.
CONTRACTS = ["monthly", "yearly", "two-year"]
CONTRACT_MIX = [0.6, 0.3, 0.1]
SHIFTED_CONTRACT_MIX = [0.2, 0.3, 0.5]


def customers(
    rows: int, seed: int = 0, shift: float = 0.0, *, contract: bool = False
) -> pd.DataFrame:
    """Customers as a monitor sees them: ``charges`` (float, mean 70) and ``tenure`` (integers).

    ``shift`` raises charges; with ``contract`` a third, text column follows, whose mix moves
    towards two-year contracts when ``shift`` is not 0. The first two columns are the same
    with or without it.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"charges": rng.normal(70 + shift, 20, rows), "tenure": rng.integers(1, 72, rows)}
    )
    if contract:
        mix = CONTRACT_MIX if shift == 0 else SHIFTED_CONTRACT_MIX
        frame["contract"] = rng.choice(CONTRACTS, rows, p=mix)
    return frame


def churn(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A labelled churn table to train, evaluate and gate models on.

    Two features (``age``, integers; ``charges``, rounded floats), a noisy 0/1 label
    ``churned`` (logistic in both features), a ``customer_id`` and a numeric ``spend``.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"age": rng.integers(18, 80, rows), "charges": rng.normal(60.0, 15.0, rows).round(2)}
    )
    logit = (frame["charges"] - 60) / 8 + (frame["age"] - 50) / 20
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame.assign(
        churned=churned,
        customer_id=[f"C{i:04d}" for i in range(rows)],
        spend=(frame["charges"] * 12).round(2),
    )


def churn_features(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """What the served churn models take: ``age`` (integers) and ``charges`` (floats, mean 50)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 80, rows), "charges": rng.normal(50, 10, rows)})


def drift_monitor(on_alert: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """Monitor ``churn-drift``: dataset ``production`` against ``training``, an alert (and its
    ``on_alert`` actions) when data drift passes 0.2; ``fields`` add to the spec or replace."""
    return {
        "kind": "Monitor",
        "name": "churn-drift",
        "target": {"dataset": "production"},
        "reference": {"dataset": "training"},
        "signals": [{"data_drift": {"threshold": 0.2}}],
        "on_alert": on_alert or [],
        **fields,
    }


# Endpoint assistant: two deployments that send requests on through a connection (no model to
# log), blue taking all traffic; and a rollout of green judged every second on its error rate.
ASSISTANT = [
    {"kind": "Connection", "name": "llm", "base_url": "http://127.0.0.1:9/v1"},
    {"kind": "Endpoint", "name": "assistant", "traffic": {"blue": 100}},
    {"kind": "Deployment", "endpoint": "assistant", "name": "blue", "connection": "llm"},
    {"kind": "Deployment", "endpoint": "assistant", "name": "green", "connection": "llm"},
]


def assistant_rollout(**fields: Any) -> dict[str, Any]:
    """A Rollout of green on assistant in two steps; ``fields`` add to the spec or replace."""
    return {
        "kind": "Rollout",
        "endpoint": "assistant",
        "candidate": "green",
        "steps": [{"weight": 20}, {"weight": 100}],
        "analysis": {
            "interval": "1s",
            "min_requests": 1,
            "metrics": [{"name": "error_rate", "max": 0.05}],
        },
        **fields,
    }
