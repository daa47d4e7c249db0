"""Model cards: one Markdown page from a version's run, data, signature, lineage and aliases."""

from __future__ import annotations

import numpy as np
import pandas as pd

import cauce
from cauce.registry.card import model_card
from cauce.workspace import Workspace


def train_frame(n: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n),
            "monthly charges": rng.normal(60.0, 15.0, n).round(2),
            "senior": rng.integers(0, 2, n).astype(bool),
        }
    )
    return frame, (frame["monthly charges"] > 60).astype(int)


def test_card_lists_metrics_params_data_signature_lineage_and_aliases(
    any_workspace: Workspace,
) -> None:
    from sklearn.linear_model import LogisticRegression

    frame, labels = train_frame()
    data = cauce.data.register("customers", frame.assign(churn=labels))
    model = LogisticRegression(C=0.5).fit(frame, labels)
    with cauce.start_run(experiment="churn", run_name="baseline") as run:
        cauce.log_input(data, context="training")
        cauce.log_params({"C": 0.5, "solver": "lbfgs"})
        cauce.log_metric("auc", 0.5, step=0)
        cauce.log_metric("auc", 0.9134, step=1)
        cauce.log_metric("log loss", 0.25)
        v1 = cauce.log_model(model, "model", registered_model="churn", input_example=frame.head(3))
    with cauce.start_run(experiment="churn"):
        cauce.log_model(model, "model", registered_model="churn")
    cauce.models.set_alias("churn", "champion", 1)
    cauce.models.set_alias("churn", "challenger", 2)
    cauce.models.set_alias("churn", "champion", 2)
    cauce.models.set_alias("churn", "champion", 1)
    cauce.models.update_version("churn", 1, description="First | baseline model")

    holdout = cauce.data.register("holdout", frame.assign(churn=labels))
    cauce.evaluations.evaluate("models:/churn/1", holdout, label="churn")
    gate = {"kind": "Gate", "name": "auc-floor", "data": "holdout@1", "label": "churn",
            "rules": [{"metric": {"name": "roc_auc", "min": 1.01}}]}  # fmt: skip
    cauce.gates.check("models:/churn/1", gate)

    card = model_card("models:/churn@champion")
    lines = card.splitlines()
    assert lines[0] == "# Model card: churn v1"
    assert lines[2] == "First | baseline model"
    assert "| Aliases | champion |" in card
    assert "| Flavor | sklearn |" in card
    assert f"| Source run | baseline ({run.run_id}) |" in card
    assert "| Status | FINISHED |" in card

    # Metrics show each one's latest value (highest step); params as logged.
    assert "| auc | 0.9134 |" in card
    assert "| log loss | 0.25 |" in card
    assert "| C | 0.5 |" in card and "| solver | lbfgs |" in card

    # The dataset the run read: name, version, context, rows and content hash.
    assert f"| customers | 1 | training | 40 | {data.content_hash} |" in card

    # Signature columns with their types, from the input example.
    assert "| tenure | long |" in card
    assert "| monthly charges | double |" in card
    assert "| senior | boolean |" in card
    assert "Output: tensor int64 [-1]" in card

    # How it scored on held-out data, and the gate that judged it there.
    [scored] = [line for line in lines if line.startswith("| holdout@1 | churn | 40 |")]
    assert "accuracy " in scored and "roc_auc " in scored
    verdict = lines[lines.index("### Gate checks") + 4]
    assert "| auc-floor | failed: " in verdict and "roc_auc" in verdict and "| tester |" in verdict

    # Lineage back to the data.
    assert f"- dataset customers v1 → run baseline ({run.run_id[:8]}) (input)" in lines
    assert f"- run baseline ({run.run_id[:8]}) → model churn v1 (produced)" in lines

    # Every alias move, oldest first, with who made it.
    history = lines[lines.index("## Alias history") + 4 :]
    moves = [[c.strip() for c in row.strip("|").split("|")][1:] for row in history if row]
    assert moves == [
        ["champion", "—", "1", "tester"],
        ["challenger", "—", "2", "tester"],
        ["champion", "1", "2", "tester"],
        ["champion", "2", "1", "tester"],
    ]
    assert f"| model.skops | {v1.files['model.skops']} |" in card
    assert any(line.startswith("- `scikit-learn==") for line in lines)

    # A version without an input example or data says so instead of leaving gaps.
    bare = model_card("models:/churn/2")
    assert "No signature: the model was logged without an input example." in bare
    assert "The run recorded no dataset inputs." in bare
    assert "No metrics were logged." in bare and "No parameters were logged." in bare
    assert "Not evaluated: `cauce models evaluate models:/churn/2 --data" in bare
    assert "### Gate checks" not in bare


def test_values_read_as_written_not_as_markup(workspace: Workspace) -> None:
    from sklearn.dummy import DummyClassifier

    from cauce.server.ui.registry import markdown

    frame, labels = train_frame()
    written = {
        "entry": "-m pytest.__main__",
        "pattern": "*.csv|[a-z]_<b>",
        "path": "C:\\runs",
        "name": "roc_auc",
    }
    with cauce.start_run(experiment="churn"):
        cauce.log_params(written)
        cauce.log_model(DummyClassifier().fit(frame, labels), registered_model="churn")

    card = model_card("models:/churn/1")
    assert "| name | roc_auc |" in card  # an underscore inside a word is left as it is
    html = markdown(card)
    for value in written.values():
        escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f"<td>{escaped}</td>" in html
    assert "<strong>" not in html and "<em>" not in html and "<b>" not in html
