"""The demo's training pipeline: features of the silver table → split → three candidates.

Every step is cached: running the pipeline again on the same silver version reuses every output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cauce

if TYPE_CHECKING:
    import pandas as pd

NUMERICAL = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]
LABEL = "churned"
CANDIDATES = ("logistic_regression", "random_forest", "gradient_boosting")


_PARAMS: dict[str, dict[str, Any]] = {
    "logistic_regression": {"C": 0.5, "max_iter": 500},
    "random_forest": {"n_estimators": 150, "max_depth": 8, "random_state": 7, "n_jobs": 2},
    "gradient_boosting": {"max_iter": 150, "learning_rate": 0.08, "random_state": 7},
}
_FAST = {"random_forest": {"n_estimators": 60}, "gradient_boosting": {"max_iter": 60}}


def candidate_params(name: str, fast: bool) -> dict[str, Any]:
    """The parameters the demo gives each model family (fewer trees with ``fast``)."""
    return {**_PARAMS[name], **(_FAST.get(name, {}) if fast else {})}


@cauce.step
def features(silver: str) -> pd.DataFrame:
    """The gold table: the model's columns of a silver dataset version."""
    table = cauce.data.load(silver)
    return table[NUMERICAL + CATEGORICAL + [LABEL]].reset_index(drop=True)


@cauce.step
def split(table: pd.DataFrame, part: str, seed: int = 7) -> pd.DataFrame:
    """The train or the test rows (75% / 25%, stratified on the label)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(table, test_size=0.25, random_state=seed, stratify=table[LABEL])
    return (train if part == "train" else test).reset_index(drop=True)


@cauce.step
def train(rows: pd.DataFrame, candidate: str, fast: bool = False) -> Any:
    """A scikit-learn pipeline (scaling, one-hot encoding, the estimator) fitted on ``rows``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    estimators = {
        "logistic_regression": LogisticRegression,
        "random_forest": RandomForestClassifier,
        "gradient_boosting": HistGradientBoostingClassifier,
    }
    encode = ColumnTransformer(
        [
            ("numerical", StandardScaler(), NUMERICAL),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model = Pipeline(
        [
            ("features", encode),
            ("model", estimators[candidate](**candidate_params(candidate, fast))),
        ]
    )
    return model.fit(rows[NUMERICAL + CATEGORICAL], rows[LABEL])


@cauce.step
def evaluate(model: Any, rows: pd.DataFrame) -> dict[str, float]:
    """ROC AUC, accuracy and F1 on held-out rows."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    scores = model.predict_proba(rows[NUMERICAL + CATEGORICAL])[:, 1]
    predicted = (scores >= 0.5).astype(int)
    return {
        "roc_auc": float(roc_auc_score(rows[LABEL], scores)),
        "accuracy": float(accuracy_score(rows[LABEL], predicted)),
        "f1": float(f1_score(rows[LABEL], predicted)),
    }


@cauce.pipeline
def training(silver: str, fast: bool = False) -> Any:
    """features → train/test split → three candidates, each trained and evaluated."""
    table = features(silver)
    train_rows = split(table, "train")
    test_rows = split(table, "test")
    candidates = {}
    for name in CANDIDATES:
        model = train(train_rows, name, fast)
        candidates[name] = {"model": model, "metrics": evaluate(model, test_rows)}
    return {"test": test_rows, "candidates": candidates}
