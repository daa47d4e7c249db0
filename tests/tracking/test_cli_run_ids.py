"""The commands that take a run id take its start, as the UI, the lineage and the audit log
shorten ids (their help's examples did so before the commands did)."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

import cauce
from cauce.cli import output
from cauce.cli.main import app
from cauce.errors import InvalidInput
from cauce.tracking import runs
from cauce.workspace import Workspace


@pytest.fixture(autouse=True)
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables as wide as their cells, whatever terminal or COLUMNS the tests run under."""
    monkeypatch.setattr(output, "console", Console(highlight=False, width=300))


def test_a_run_is_named_by_the_start_of_its_id_when_that_names_one_run(
    local_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = iter(["3f2a9c0e" + "0" * 24, "3f2a77aa" + "1" * 24, "8b1d7e2f" + "2" * 24])
    monkeypatch.setattr(runs, "new_id", lambda: next(ids))
    for c, name in enumerate(["first", "second", "third"]):
        with cauce.start_run(experiment="churn", run_name=name):
            cauce.log_param("C", c)
    cli = CliRunner()

    shown = cli.invoke(app, ["runs", "show", "3f2a9c", "--json"])
    assert json.loads(shown.output)["info"]["run_name"] == "first"
    upper = cli.invoke(app, ["runs", "show", "3F2A9C", "--json"])  # any case, as other ids
    assert json.loads(upper.output)["info"]["run_name"] == "first"
    experiment = json.loads(shown.output)["info"]["experiment_id"]
    assert f"churn ({experiment})" in cli.invoke(app, ["runs", "show", "3f2a9c"]).output
    compared = cli.invoke(app, ["runs", "compare", "3f2a9", "8b1d"])
    assert "*params.C" in compared.output and "second" not in compared.output
    deleted = cli.invoke(app, ["runs", "delete", "8b1d7e2f"])
    assert deleted.output == f"Deleted run 8b1d7e2f{'2' * 24}\n"
    assert cli.invoke(app, ["runs", "restore", "8b1d7"]).exit_code == 0  # deleted runs too

    several = cli.invoke(app, ["runs", "show", "3f2a"])
    assert isinstance(several.exception, InvalidInput)
    assert "'3f2a' is the start of several runs' ids" in str(several.exception)
    # A list cut at its limit says so, and how to see the rest.
    assert (
        "Only the first 2 shown: -n 4 shows more."
        in cli.invoke(app, ["runs", "list", "-n", "2"]).output
    )
    assert "shows more" not in cli.invoke(app, ["runs", "list", "-n", "4"]).output
    too_short = cli.invoke(app, ["runs", "show", "3f2"])  # 3 characters: taken as a whole id
    assert "run '3f2' does not exist" in str(too_short.exception)


def test_the_lineage_the_audit_log_and_evals_compare_take_the_start_of_a_run_id(
    local_workspace: Workspace,
) -> None:
    made = []
    for name in ("fit", "refit"):
        with cauce.start_run(experiment="churn", run_name=name) as run:
            cauce.log_metrics({"auc": 0.8, "f1": 0.6, "loss": 0.4, "precision": 0.7, "recall": 0.5})
            made.append(run.info.run_id)
    short = made[0][:8]
    cli = CliRunner()

    shown = cli.invoke(app, ["lineage", f"runs:/{short}", "--json"])
    assert json.loads(shown.output)["root"]["id"] == made[0], shown.output
    audit = cli.invoke(app, ["audit", "--entity", f"run:{short}", "--json"])
    assert {e["entity_id"] for e in json.loads(audit.output)} == {made[0]}, audit.output
    nothing = cli.invoke(app, ["audit", "-n", "0"])  # it printed nothing, as if none were made
    assert isinstance(nothing.exception, InvalidInput) and "limit" in str(nothing.exception)
    compared = cli.invoke(app, ["evals", "compare", short, made[1][:6], "--json"])
    assert [r["run_id"] for r in json.loads(compared.output)] == made, compared.output
    # Every metric has its column where the width holds them (it was the first four).
    [header] = [x for x in cli.invoke(app, ["runs", "list"]).output.splitlines() if "Run ID" in x]
    assert [c.strip() for c in header.split("┃")[6:-1]] == [
        "auc",
        "f1",
        "loss",
        "precision",
        "recall",
    ]
