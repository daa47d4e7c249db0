"""The Monitor and Gate examples in docs/examples are valid specs."""

from __future__ import annotations

from pathlib import Path

import yaml

from cauce.monitoring.monitors import parse_spec
from cauce.registry.gates import load_policy

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
DEMO = Path(__file__).parents[2] / "src" / "cauce" / "demo" / "data"


def test_the_monitor_example_parses_as_written() -> None:
    spec = parse_spec(yaml.safe_load((EXAMPLES / "churn-monitor.yaml").read_text()))
    assert [s.name for s in spec.signals] == [
        "data_drift",
        "prediction_drift",
        "data_quality",
        "model_performance",
    ]
    assert [a.name for a in spec.on_alert] == ["trigger", "webhook"]
    assert spec.window.size == 3_600_000 and spec.cooldown == 3_600_000
    assert spec.signals[0].body.features == {"monthly_charges": 0.05}


def test_the_gate_examples_parse() -> None:
    for path in (EXAMPLES / "churn-gate.yaml", DEMO / "churn-gate.yaml"):
        policy = load_policy(path)
        assert policy.rules, path
