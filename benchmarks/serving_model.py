"""The serving benchmark's model: a churn classifier trained once on generated data.

The demo's customer table (``cauce.demo.generate.customers``) widened to 15 numerical and 4
categorical features; a scikit-learn ``Pipeline`` (scaling and one-hot encoding, then a 100-tree
random forest) pickled to ``.bench/serving/`` with the request body and the input example, so
that both sides serve the identical estimator.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

from peers import note


def sklearn_version() -> str:
    """The scikit-learn of this interpreter: the MLflow venv must unpickle the same one."""
    import sklearn

    return str(sklearn.__version__)


NUMERICAL = [
    "age",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "minutes_day",
    "minutes_evening",
    "minutes_night",
    "minutes_intl",
    "data_gb",
    "dropped_calls",
    "late_payments",
    "lines",
    "discount_pct",
    "days_since_contact",
]
CATEGORICAL = ["contract", "internet_service", "payment_method", "region"]


def churn_table(rows: int, seed: int) -> Any:
    """The demo's customer table (its injected errors dropped) widened to 15 + 4 features."""
    import numpy as np

    from cauce.demo.generate import customers

    frame = customers(rows, seed).dropna()
    frame = frame[frame["age"] >= 0].reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    n = len(frame)
    churn = frame["churned"].to_numpy()
    online = (frame["internet_service"] != "none").to_numpy()
    frame["minutes_day"] = (rng.normal(180, 50, n) + 20 * churn).round(1)
    frame["minutes_evening"] = rng.normal(200, 50, n).round(1)
    frame["minutes_night"] = rng.normal(200, 45, n).round(1)
    frame["minutes_intl"] = rng.gamma(2.0, 5.0, n).round(1)
    frame["data_gb"] = (rng.gamma(2.0, 4.0, n) * online).round(2)
    frame["dropped_calls"] = rng.poisson(1.0 + churn)
    frame["late_payments"] = rng.poisson(0.5 + 0.7 * churn)
    frame["lines"] = rng.integers(1, 6, n)
    frame["discount_pct"] = rng.choice([0.0, 5.0, 10.0, 15.0, 20.0], n)
    frame["days_since_contact"] = rng.integers(0, 365, n)
    frame["region"] = rng.choice(["north", "south", "east", "west", "central"], n)
    return frame[NUMERICAL + CATEGORICAL + ["churned"]]


def ensure_model(folder: Path, seed: int, rows_per_request: int) -> dict[str, Any]:
    """Train (once) and pickle the model; write the request body and the input example."""
    sk = sklearn_version()
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / f"churn-rf100-seed{seed}-sklearn{sk}.pkl"
    meta_path = model_path.with_suffix(".json")
    table = churn_table(20_000, seed)
    features = table[NUMERICAL + CATEGORICAL]
    if not model_path.exists() or not meta_path.exists():
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        note(f"training the model ({len(table)} rows) into {model_path}")
        x_train, x_test, y_train, y_test = train_test_split(
            features, table["churned"], test_size=0.25, random_state=seed
        )
        encode = ColumnTransformer(
            [
                ("numerical", StandardScaler(), NUMERICAL),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ]
        )
        forest = RandomForestClassifier(
            n_estimators=100, max_depth=12, min_samples_leaf=3, random_state=seed
        )
        model = Pipeline([("features", encode), ("model", forest)]).fit(x_train, y_train)
        auc = float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))
        tmp = model_path.with_suffix(".tmp")
        tmp.write_bytes(pickle.dumps(model, protocol=5))
        tmp.replace(model_path)
        meta_path.write_text(
            json.dumps({"roc_auc": auc, "train_rows": len(x_train), "sklearn": sk}, indent=2)
        )
    meta = json.loads(meta_path.read_text())
    example = folder / "example.json"
    example.write_text(features.iloc[:5].to_json(orient="split", index=False))
    body = folder / f"body-{rows_per_request}.json"
    split = json.loads(features.iloc[100 : 100 + rows_per_request].to_json(orient="split"))
    split.pop("index", None)
    body.write_text(json.dumps({"dataframe_split": split}))
    return {
        "model": str(model_path),
        "model_bytes": model_path.stat().st_size,
        "example": str(example),
        "body": str(body),
        "body_bytes": body.stat().st_size,
        "rows_per_request": rows_per_request,
        **meta,
    }
