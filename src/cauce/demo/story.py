"""The demo story (first chapters): data → tracked training of three candidates → registry.

Each stage prints one or two lines with its numbers. Later chapters (pipelines, serving,
monitoring, the closed loop) extend :func:`run`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

NUMERICAL = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
CATEGORICAL = ["contract", "internet_service", "payment_method"]
LABEL = "churned"
EXPERIMENT = "churn"
MODEL = "churn"


@dataclass(frozen=True)
class Candidate:
    """One model family tried by the demo, with its parameters."""

    name: str
    params: dict[str, Any]

    def build(self) -> Any:
        """A scikit-learn pipeline: encoding and scaling, then the estimator."""
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
        features = ColumnTransformer(
            [
                ("numerical", StandardScaler(), NUMERICAL),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
            ]
        )
        return Pipeline([("features", features), ("model", estimators[self.name](**self.params))])


def candidates(fast: bool) -> list[Candidate]:
    """The three model families the demo compares."""
    return [
        Candidate("logistic_regression", {"C": 0.5, "max_iter": 500}),
        Candidate(
            "random_forest",
            {"n_estimators": 60 if fast else 150, "max_depth": 8, "random_state": 7, "n_jobs": 2},
        ),
        Candidate(
            "gradient_boosting",
            {"max_iter": 60 if fast else 150, "learning_rate": 0.08, "random_state": 7},
        ),
    ]


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Drop the rows a quality bar would reject: missing charges, impossible ages, duplicates."""
    frame = raw.dropna(subset=["total_charges"])
    frame = frame[(frame["age"] >= 18) & (frame["age"] <= 120)]
    frame = frame.drop_duplicates(subset="customer_id", keep=False)
    return frame.reset_index(drop=True)


def run(fast: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run the story in the current workspace; return the numbers it printed."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import cauce
    from cauce.demo.generate import load_bundled
    from cauce.workspace import current

    out = console or Console(highlight=False)
    started = time.perf_counter()
    ws = current()
    out.print(f"[bold]Cauce demo[/] in workspace {ws.settings.root}")

    raw = load_bundled()
    if fast:
        raw = raw.head(4000)
    bronze = cauce.data.register("customers", raw, layer="bronze")
    features = clean(raw)
    gold = cauce.data.register("churn_features", features, layer="gold")
    out.print(
        f"1. data      customers v{bronze.version} (bronze): {bronze.row_count:,} rows → "
        f"churn_features v{gold.version} (gold): {gold.row_count:,} rows after dropping "
        f"{bronze.row_count - gold.row_count} with missing charges, bad ages or duplicate ids"
    )

    X = features[NUMERICAL + CATEGORICAL]
    y = features[LABEL]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=7, stratify=y
    )
    results: list[dict[str, Any]] = []
    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("2. training", total=3)
        for candidate in candidates(fast):
            with cauce.start_run(experiment=EXPERIMENT, run_name=candidate.name) as run:
                cauce.log_input(gold, context="training")
                cauce.log_params({"model": candidate.name, **candidate.params})
                cauce.log_params({"train_rows": len(X_train), "test_rows": len(X_test)})
                model = candidate.build().fit(X_train, y_train)
                scores = model.predict_proba(X_test)[:, 1]
                predicted = (scores >= 0.5).astype(int)
                metrics = {
                    "roc_auc": float(roc_auc_score(y_test, scores)),
                    "accuracy": float(accuracy_score(y_test, predicted)),
                    "f1": float(f1_score(y_test, predicted)),
                }
                cauce.log_metrics(metrics)
                cauce.log_model(model, "model", input_example=X_test.head(5))
                results.append({"run_id": run.run_id, "candidate": candidate.name, **metrics})
            progress.advance(task)

    best = max(results, key=lambda r: r["roc_auc"])
    version = cauce.models.register(
        f"runs:/{best['run_id']}/model",
        MODEL,
        description="Predicts which customers will churn in the next month.",
    )
    cauce.models.set_alias(MODEL, "champion", version.version)

    table = Table(title="2. training  three candidates, held-out test set", title_justify="left")
    for column in ("Candidate", "ROC AUC", "Accuracy", "F1", "Run"):
        table.add_column(column)
    for r in sorted(results, key=lambda r: -r["roc_auc"]):
        mark = " ★" if r is best else ""
        table.add_row(
            r["candidate"] + mark,
            f"{r['roc_auc']:.4f}",
            f"{r['accuracy']:.4f}",
            f"{r['f1']:.4f}",
            r["run_id"][:8],
        )
    out.print(table)
    out.print(
        f"3. registry  {best['candidate']} registered as {MODEL} v{version.version}, "
        f"alias champion → models:/{MODEL}@champion"
    )
    out.print(
        f"   see it:   cauce models card models:/{MODEL}@champion  ·  "
        f"cauce lineage models:/{MODEL}/{version.version}  ·  cauce audit"
    )
    elapsed = time.perf_counter() - started
    out.print(f"[dim]done in {elapsed:.1f}s[/]")
    return {
        "bronze": bronze.ref,
        "gold": gold.ref,
        "results": results,
        "best": best,
        "version": version.version,
        "seconds": elapsed,
    }
