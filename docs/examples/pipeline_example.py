"""A cached training pipeline: ingest → clean → train → evaluate, with a parallel profile step.

Run it with ``python docs/examples/pipeline_example.py`` inside a workspace, or from the CLI:
``cauce pipelines run docs/examples/pipeline_example.py:training -p rows=500``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cauce

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression


@cauce.step
def ingest(rows: int, seed: int = 0) -> pd.DataFrame:
    """A generated customer table with a few missing charges."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    charges = rng.normal(70, 20, rows).round(2)
    charges[rng.random(rows) < 0.05] = np.nan
    churn = (rng.random(rows) < 1 / (1 + np.exp((tenure - 24) / 8))).astype(int)
    return pd.DataFrame({"tenure": tenure, "charges": charges, "churn": churn})


@cauce.step(retries=2, retry_backoff=0.1)
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Rows without missing values."""
    return raw.dropna().reset_index(drop=True)


@cauce.step
def profile(raw: pd.DataFrame) -> dict[str, Any]:
    """Null counts of the raw table (runs beside clean → train)."""
    return {column: int(raw[column].isna().sum()) for column in raw.columns}


@cauce.step(timeout=120, env=["scikit-learn"])
def train(table: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    """A logistic regression of churn on tenure and charges."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(table[["tenure", "charges"]], table["churn"])


@cauce.step
def evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict[str, float]:
    """Training accuracy (a real pipeline would hold data out)."""
    accuracy = model.score(table[["tenure", "charges"]], table["churn"])
    return {"accuracy": round(float(accuracy), 4)}


@cauce.pipeline
def training(rows: int = 1000, c: float = 1.0) -> Any:
    """The DAG: ingest → (clean → train → evaluate) and ingest → profile."""
    raw = ingest(rows)
    table = clean(raw)
    profile(raw)
    return evaluate(train(table, c=c), table)


if __name__ == "__main__":
    run = training.run(rows=1000, executor="local")
    print(run.status, run.result())
    for name, step in run.steps.items():
        print(f"{name:10} {step.status:10} cache_hit={step.cache_hit} attempts={step.attempts}")
