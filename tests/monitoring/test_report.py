"""``cauce monitors report``: a self-contained HTML page of a monitor run, from real runs,
local and through a server."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cauce.data import register
from cauce.errors import NotFound
from cauce.monitoring.monitors import MonitorRun, run_monitor, run_values
from cauce.monitoring.report import render_report, write_report
from cauce.specs import apply
from cauce.workspace import Workspace, current
from clitools import assert_one_line_error, cauce

HOUR = 3_600_000
START = 1_700_000_000_000
ODD = "<b>x</b>"  # a feature name that must come out escaped
SPEC = """\
kind: Monitor
name: churn-drift
target: {dataset: churn-current}
reference: {dataset: churn-reference}
signals:
  - data_drift: {threshold: 0.1, drift_share: 0.5}
  - data_quality: {null_rate: 0.2, out_of_bounds_rate: 0.05}
on_alert:
  - log: {level: info}
cooldown: 1m
"""
# Anything that would make the page fetch from elsewhere.
EXTERNAL = re.compile(r"https?://|\b(?:src|href|xlink:href)\s*=|url\(|@import", re.IGNORECASE)


def _frame(rng: np.random.Generator, n: int, shift: float, plans: list[float]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "age": rng.normal(40 + shift, 10, n),
            "plan": rng.choice(["basic", "pro", "max"], n, p=plans),
            ODD: rng.uniform(0, 1, n),
        }
    )
    frame.loc[: n // 20, "age"] = None  # some nulls
    return frame


def _monitor(tmp_path: Path, currents: list[pd.DataFrame]) -> list[MonitorRun]:
    """Register the reference, apply the monitor, run it once per current version."""
    rng = np.random.default_rng(0)
    register("churn-reference", _frame(rng, 600, 0, [0.5, 0.4, 0.1]))
    spec = tmp_path / "monitor.yaml"
    spec.write_text(SPEC)
    apply(spec)
    found = []
    wait = not current().remote  # the actions run here where the store is
    for i, window in enumerate(currents):
        register("churn-current", window, allow_schema_change=True)
        found.append(run_monitor("churn-drift", now=START + i * HOUR, wait=wait))
    return found


def _drifting() -> list[pd.DataFrame]:
    rng = np.random.default_rng(1)
    return [
        _frame(rng, 400, 0, [0.5, 0.4, 0.1]),
        _frame(rng, 400, 6, [0.4, 0.4, 0.2]),
        _frame(rng, 400, 12, [0.2, 0.4, 0.4]),
    ]


def test_report_shows_distributions_values_thresholds_and_history(
    workspace: Workspace, tmp_path: Path
) -> None:
    done = _monitor(tmp_path, _drifting())
    assert [r.status for r in done][-1] == "alert"
    out = write_report("churn-drift", tmp_path / "reports" / "churn.html")
    assert out == tmp_path / "reports" / "churn.html" and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["churn.html"]  # no temporary left
    page = out.read_text()

    assert "<h1>Monitor churn-drift</h1>" in page
    assert "dataset churn-current" in page and "churn-reference@1" in page
    values = run_values(done[-1].id)
    for v in values:
        assert f"{v['value']:.4g}" in page, v
        assert f"{v['threshold']:g}" in page, v
    for feature in ("age", "plan"):
        assert f"<h3>{feature}</h3>" in page
    outcomes = {v["outcome"] for v in values}
    assert outcomes == {"passed", "breached"}
    assert '<span class="badge bad">breached</span>' in page
    assert '<span class="badge good">passed</span>' in page
    drifting = [v for v in values if v["signal"] == "data_drift" and v["feature"] != "*"]
    assert page.count('aria-label="reference and current distributions"') == len(drifting) == 3
    # A chart per feature card, and a small one per data quality row.
    quality = [v for v in values if v["signal"] == "data_quality"]
    assert page.count('aria-label="history of') == len(drifting) + len(quality)
    assert page.count("<svg") == 2 * len(drifting) + len(quality)
    # Three runs in each history chart: the last drawn bigger; the threshold as a dashed line.
    card = page.split("<h3>age</h3>", 1)[1].split('<div class="card', 1)[0]
    history = card.split('aria-label="history of normalized_wasserstein"', 1)[1]
    assert history.count("<circle") == 3 and 'stroke-dasharray="5 4"' in history
    assert "threshold 0.1 (breaches above)" in history
    # Categories on the axis, bin edges for numbers, both sides in the legend.
    assert ">basic</text>" in page and ">max</text>" in page
    assert "reference (n=" in page and "current (n=" in page
    assert "drifted_share" in page and "Data quality" in page
    # Alerts with their actions, and the runs.
    assert "<h2>Alerts</h2>" in page and "monitor churn-drift:" in page
    ran = '"badge">pending' if workspace.remote else '"badge good">succeeded'  # queued remotely
    assert "log: " in page and f"<span class={ran}</span>" in page
    assert page.count("(this report)") == 1

    assert EXTERNAL.findall(page) == []
    assert "<script" not in page
    assert ODD not in page and html_escaped(ODD) in page


def html_escaped(text: str) -> str:
    """``text`` as the page must show it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_a_feature_missing_from_the_window_shows_why(workspace: Workspace, tmp_path: Path) -> None:
    currents = _drifting()
    currents[-1] = currents[-1].drop(columns=["plan"])
    done = _monitor(tmp_path, currents)
    page = write_report("churn-drift", tmp_path / "r.html").read_text()

    missing = [v for v in run_values(done[-1].id) if v["feature"] == "plan"]
    assert {v["outcome"] for v in missing if v["signal"] == "data_drift"} == {"not_computed"}
    card = page.split("<h3>plan</h3>", 1)[1].split('<div class="card', 1)[0]
    assert '<span class="badge">not computed</span>' in card
    assert "Not computed:</b> the column is missing from the current window" in card
    assert "no drift" not in page.lower()
    assert 'aria-label="reference and current distributions"' not in card
    # Its history still shows the two runs that had it, and the third as not computed.
    assert card.count("<circle") == 3 and "not computed: the column is missing" in card
    assert "(max)" in card and "Data drift" in page


def test_an_older_run_and_unknown_runs(workspace: Workspace, tmp_path: Path) -> None:
    done = _monitor(tmp_path, _drifting())
    page = write_report("churn-drift", tmp_path / "r.html", run_id=done[0].id[:10]).read_text()
    assert page.count("(this report)") == 1
    assert done[0].id in page and done[2].id not in page  # later runs are not history yet
    with pytest.raises(NotFound, match="does not exist"):
        write_report("churn-drift", tmp_path / "r.html", run_id="nope")
    with pytest.raises(NotFound, match="no runs yet"):
        (tmp_path / "other.yaml").write_text(SPEC.replace("churn-drift", "idle"))
        apply(tmp_path / "other.yaml")
        write_report("idle", tmp_path / "idle.html")
    assert not (tmp_path / "idle.html").exists()


def test_a_failed_run_shows_its_error() -> None:
    run = MonitorRun(
        "r1",
        "m",
        "failed",
        START,
        3,
        None,
        None,
        0,
        {"reason": "x", "breaches": 0},
        error="boom <i>",
    )
    spec = {"name": "m", "target": {"dataset": "d"}, "reference": {"dataset": "ref"}}
    page = render_report(spec, run, [], [], generated_at=START)
    assert "The run failed:</b> boom &lt;i&gt;" in page
    assert '<span class="badge bad">failed</span>' in page
    assert "This monitor has raised no alert." in page
    assert EXTERNAL.findall(page) == []


def test_endpoint_signals_render_from_values() -> None:
    run = MonitorRun("r2", "m", "alert", START, 3, START - HOUR, START, 50, {"breaches": 1})
    spec: dict[str, Any] = {
        "name": "m",
        "target": {"endpoint": "churn"},
        "reference": {"model": "models:/churn@champion"},
        "signals": [
            {"prediction_drift": {"metric": "psi"}},
            {"model_performance": {"metric": "accuracy", "min": 0.8}},
        ],
    }
    values: list[dict[str, Any]] = [
        {
            "signal": "prediction_drift",
            "feature": "prediction",
            "metric": "psi",
            "value": None,
            "threshold": None,
            "outcome": "not_computed",
            "details": {"reason": "no predictions in the window"},
        },
        {
            "signal": "model_performance",
            "feature": "*",
            "metric": "accuracy",
            "value": 0.7123,
            "threshold": 0.8,
            "outcome": "breached",
            "details": {"predictions": 50, "labelled": 40},
        },
    ]
    series = [{**v, "at": START, "run_id": "r2"} for v in values]
    page = render_report(spec, run, values, series, generated_at=START)
    assert "endpoint churn" in page and "training data of models:/churn@champion" in page
    assert "Not computed:</b> no predictions in the window" in page
    assert "0.7123" in page and "0.8 <span" in page and "(min)" in page
    assert "labelled: 40" in page and "2023-11-14 21:13 UTC → 2023-11-14 22:13 UTC" in page


def test_cli_report(workspace: Workspace, tmp_path: Path) -> None:
    _monitor(tmp_path, _drifting())
    home = tmp_path / "ws"
    out = tmp_path / "cli.html"
    result = cauce(home, "monitors", "report", "churn-drift", "--html", str(out))
    assert "report written to" in result.stdout and out.is_file()
    assert "<h1>Monitor churn-drift</h1>" in out.read_text()

    missing = tmp_path / "missing.html"
    unknown = cauce(home, "monitors", "report", "nope", "--html", str(missing), check=False)
    assert_one_line_error(unknown, "monitor 'nope' does not exist")
    assert not missing.exists()
