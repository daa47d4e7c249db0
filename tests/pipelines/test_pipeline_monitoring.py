"""What a pipeline run reports beyond its outputs: anomalies against earlier runs, the dataset
versions its steps read (lineage), and OpenLineage events."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import cauce
from cauce import workspace as workspace_module
from cauce.lineage.graph import walk
from cauce.pipelines.loading import load_pipeline
from cauce.workspace import Workspace

FLOW = """
import cauce


@cauce.step(cache=False)
def rows(n: int):
    import pandas as pd

    return pd.DataFrame({"i": range(n), "x": [None if i % 10 == 0 else i for i in range(n)]})


@cauce.step(cache=False, anomalies="fail")
def strict(n: int):
    import pandas as pd

    return pd.DataFrame({"i": range(n)})


@cauce.step
def read(ref: str) -> int:
    return len(cauce.data.load(ref))


@cauce.pipeline
def counts(n: int = 1000):
    return rows(n)


@cauce.pipeline
def guarded(n: int = 1000):
    return strict(n)


@cauce.pipeline
def reader(ref: str):
    return read(ref)
"""


def load(tmp_path: Path, name: str) -> object:
    path = tmp_path / "flows.py"
    if not path.exists():
        path.write_text(textwrap.dedent(FLOW))
    return load_pipeline(f"{path}:{name}")


def test_a_row_count_out_of_line_is_recorded_as_an_anomaly(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    counts = load(tmp_path, "counts")
    for n in (1000, 1004, 998, 1002, 996, 1001):
        run = counts.run(n=n)  # type: ignore[attr-defined]
        assert "anomalies" not in (run.steps["rows"].stats or {})
    run = counts.run(n=40)  # type: ignore[attr-defined]
    assert run.succeeded  # the default policy only warns
    [anomaly] = run.steps["rows"].stats["anomalies"]  # type: ignore[index]
    assert anomaly["metric"] == "rows" and anomaly["value"] == 40 and anomaly["history"] == 6


def test_a_step_can_fail_on_an_anomaly(workspace: Workspace, tmp_path: Path) -> None:
    guarded = load(tmp_path, "guarded")
    for n in (500, 502, 498, 501, 499):
        assert guarded.run(n=n).succeeded  # type: ignore[attr-defined]
    run = guarded.run(n=5000)  # type: ignore[attr-defined]
    assert run.status == "FAILED"
    step = run.steps["strict"]
    assert step.status == "FAILED"
    assert "anomalies in the data flow: rows = 5000" in (step.error or "")


def test_dataset_versions_read_by_a_step_are_lineage_inputs(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    version = cauce.data.register("customers", pd.DataFrame({"a": [1, 2, 3]}))
    run = load(tmp_path, "reader").run(ref=version.ref)  # type: ignore[attr-defined]
    assert run.result() == 3
    downstream = walk(any_workspace, "dataset_version", version.id, "downstream")
    step_runs = [n for n in downstream.nodes if n.kind == "step_run"]
    assert [e.relation for e in downstream.edges if e.dst.kind == "step_run"] == ["input"]
    assert len(step_runs) == 1


@pytest.mark.parametrize("executor", ["local", "process"])
def test_openlineage_events_for_the_run_and_its_steps(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    events = tmp_path / "lineage.jsonl"
    monkeypatch.setenv("CAUCE_OPENLINEAGE_URL", str(events))
    workspace_module.reset()
    version = cauce.data.register("customers", pd.DataFrame({"a": [1, 2]}))
    run = load(tmp_path, "reader").run(ref=version.ref, executor=executor)  # type: ignore[attr-defined]
    assert run.succeeded, run.error
    sent = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["eventType"], e["job"]["name"]) for e in sent] == [
        ("START", "reader"),
        ("START", "reader.read"),
        ("COMPLETE", "reader.read"),
        ("COMPLETE", "reader"),
    ]
    step_event = sent[2]
    assert step_event["run"]["facets"]["parent"]["job"]["name"] == "reader"
    assert step_event["inputs"][0]["name"] == f"dataset_version/{version.id}"
    output = run.steps["read"].output
    assert output is not None  # the output's blob is a dataset too, as in the lineage graph
    assert [o["name"] for o in step_event["outputs"]] == [
        "reader.read",
        f"artifact/{output['sha256']}",
    ]
