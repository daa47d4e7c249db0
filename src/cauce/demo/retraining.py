"""The retraining pipeline the demo's monitor triggers when ``churn`` decays.

fresh batch (bronze) → quality bar → silver → train/held-out split → the champion's recipe
refitted on fresh and earlier rows → registered, evaluated with the champion on the same
held-out rows → gate → alias ``challenger`` → canary rollout on the endpoint. A candidate that
fails the gate stops the pipeline there, with the failing rules in its error: it never reaches
traffic.

The monitor runs it as ``trigger: {pipeline: <this file>:retraining, params: {...}}``; the
alert's id arrives as ``alert_id`` and is recorded on the tracked run.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, Any

import cauce
from cauce.demo.pipeline import CATEGORICAL, LABEL, NUMERICAL, train

if TYPE_CHECKING:
    import pandas as pd

HOLDOUT = "churn_holdout"
SUITE = str(files("cauce.demo") / "data" / "customers-silver.yaml")
GATE = str(files("cauce.demo") / "data" / "churn-gate.yaml")


@cauce.step
def fresh_silver(batch: str) -> str:
    """The fresh bronze batch through the quality bar into silver; its silver version ref."""
    from cauce.demo.story import clean

    promoted = cauce.data.promote(
        batch, SUITE, to_layer="silver", name="customers_recent_silver", transform=clean
    )
    return promoted.version.ref


@cauce.step
def fresh_rows(silver: str, part: str, seed: int = 11) -> pd.DataFrame:
    """The fresh training rows, or the held-out rows (30%, stratified) registered as a gold
    dataset so that every model is evaluated on the same version."""
    from sklearn.model_selection import train_test_split

    table = cauce.data.load(silver)[NUMERICAL + CATEGORICAL + [LABEL]]
    rest, holdout = train_test_split(table, test_size=0.3, random_state=seed, stratify=table[LABEL])
    if part == "holdout":
        holdout = holdout.reset_index(drop=True)
        cauce.data.register(HOLDOUT, holdout, layer="gold", description="held-out fresh rows")
        return holdout
    return rest.reset_index(drop=True)


@cauce.step
def refit(earlier: str, fresh: pd.DataFrame, recipe: str, fast: bool = False) -> Any:
    """The champion's recipe fitted on the fresh rows and as many earlier rows."""
    import pandas as pd

    old = cauce.data.load(earlier)[NUMERICAL + CATEGORICAL + [LABEL]]
    rows = pd.concat([old.sample(n=min(len(old), len(fresh)), random_state=5), fresh])
    return train.fn(rows.reset_index(drop=True), recipe, fast)


@cauce.step
def register_challenger(
    model: Any,
    earlier: str,
    fresh: str,
    holdout: pd.DataFrame,
    recipe: str,
    alert_id: str = "",
) -> dict[str, Any]:
    """Register the refitted model, put it through the gate, and make it the challenger."""
    from cauce.errors import QualityGateFailed
    from cauce.registry.gates import check

    example = holdout[NUMERICAL + CATEGORICAL].head(5)
    with cauce.start_run(experiment="churn", run_name="retrained") as run:
        cauce.log_input(cauce.data.get_version(earlier), context="training")
        cauce.log_input(cauce.data.get_version(fresh), context="training")
        cauce.log_params({"recipe": recipe, "rows": "fresh + as many earlier"})
        cauce.set_tags({"alert_id": alert_id})
        cauce.log_model(model, "model", input_example=example)
    version = cauce.models.register(
        f"runs:/{run.run_id}/model",
        "churn",
        description=f"{recipe} refitted on fresh data after alert {alert_id or '(none)'}.",
    )
    cauce.models.set_version_tag(
        "churn", version.version, "intended_use", "monthly churn outreach lists"
    )
    result = check(version.uri, GATE, actor="retraining")
    rules = [
        {
            "name": r.name,
            "kind": r.kind,
            "passed": r.passed,
            "value": r.value,
            "message": r.message,
            "details": r.details,
        }
        for r in result.rules
    ]
    if not result.passed:
        failing = "; ".join(r.message for r in result.rules if not r.passed)
        raise QualityGateFailed(f"churn v{version.version} failed the gate: {failing}")
    cauce.models.set_alias(
        "churn",
        "challenger",
        version.version,
        reason=f"passed gate {result.policy} after alert {alert_id or '(none)'}",
        actor="retraining",
    )
    return {"version": version.version, "run_id": run.run_id, "gate": rules}


@cauce.step
def canary(registered: dict[str, Any], endpoint: str = "churn") -> dict[str, Any]:
    """Deploy the challenger as ``green`` and start a canary rollout judged by analysis."""
    from cauce.demo.serving import ANALYSIS, CANARY_STEPS, apply_documents

    apply_documents(
        [
            {
                "kind": "Deployment",
                "endpoint": endpoint,
                "name": "green",
                "model": f"models:/churn/{registered['version']}",
                "collect": {"sampling": 1.0},
            },
            {
                "kind": "Rollout",
                "endpoint": endpoint,
                "candidate": "green",
                "steps": CANARY_STEPS,
                "analysis": ANALYSIS,
            },
        ]
    )
    return {"deployment": "green", "version": registered["version"]}


@cauce.pipeline
def retraining(
    batch: str,
    earlier: str,
    recipe: str,
    fast: bool = False,
    alert_id: str = "",
) -> Any:
    """Fresh data → quality bar → refit → gate → challenger → canary."""
    silver = fresh_silver(batch)
    holdout = fresh_rows(silver, "holdout")
    model = refit(earlier, fresh_rows(silver, "train"), recipe, fast)
    registered = register_challenger(model, earlier, silver, holdout, recipe, alert_id)
    return canary(registered)
