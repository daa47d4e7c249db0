"""The lineage graph: dataset version → run → model version, walked both ways; references."""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cauce
from cauce.cli import refs
from cauce.errors import InvalidInput, NotFound
from cauce.lineage.graph import walk
from cauce.workspace import Workspace
from clitools import assert_one_line_error
from clitools import cauce as cauce_cli
from together import at_once


def trained() -> tuple[object, pd.DataFrame]:
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=30), "y": rng.normal(size=30)})
    return DecisionTreeClassifier(max_depth=2).fit(frame, frame["x"] > 0), frame


def edges(graph: object) -> set[tuple[str, str, str, str, str]]:
    return {
        (e.src.kind, e.src.id, e.relation, e.dst.kind, e.dst.id)
        for e in graph.edges  # type: ignore[attr-defined]
    }


def test_log_input_and_log_model_link_data_run_and_model(any_workspace: Workspace) -> None:
    model, frame = trained()
    train = cauce.data.register("customers", frame)
    other = cauce.data.register("holdout", frame.head(10))
    with cauce.start_run(experiment="churn", run_name="fit") as run:
        cauce.log_input(train)
        cauce.log_input("holdout@1", context="evaluation")
        version = cauce.log_model(model, "model", registered_model="churn")
    with cauce.start_run(experiment="churn", run_name="unrelated"):
        cauce.log_input(other, context="evaluation")

    # The version's package is an artifact node: its manifest, which the run logged.
    manifest = version.spec_sha256
    up = walk(any_workspace, "model_version", version.id, "upstream")
    assert edges(up) == {
        ("dataset_version", train.id, "input", "run", run.run_id),
        ("dataset_version", other.id, "input", "run", run.run_id),
        ("run", run.run_id, "produced", "model_version", version.id),
        ("artifact", manifest, "packaged_as", "model_version", version.id),
        ("run", run.run_id, "logged", "artifact", manifest),
    }
    # Edges read as the data flowed: into the run, out of it, into the model.
    assert [(e.src.kind, e.relation, e.dst.kind) for e in up.edges] == [
        ("dataset_version", "input", "run"),
        ("dataset_version", "input", "run"),
        ("run", "logged", "artifact"),
        ("run", "produced", "model_version"),
        ("artifact", "packaged_as", "model_version"),
    ]
    assert up.root.label == "model churn v1"
    assert {n.label for n in up.nodes} == {
        "model churn v1",
        f"run fit ({run.run_id[:8]})",
        "dataset customers v1",
        "dataset holdout v1",
        f"artifact model/cauce-model.yaml (sha256:{manifest[:12]})",
    }

    files = set(version.files.values())  # every file the run logged for the model
    logged = {("run", run.run_id, "logged", "artifact", sha) for sha in files}
    down = walk(any_workspace, "dataset_version", train.id, "downstream")
    assert ("model_version", version.id) in {(n.kind, n.id) for n in down.nodes}
    assert edges(down) == {
        ("dataset_version", train.id, "input", "run", run.run_id),
        ("run", run.run_id, "produced", "model_version", version.id),
        ("artifact", manifest, "packaged_as", "model_version", version.id),
        *logged,
    }
    # Downstream of the shared holdout: both runs, the model and the files one of them logged.
    held = walk(any_workspace, "dataset_version", other.id, "downstream")
    assert sorted(n.kind for n in held.nodes if n.kind != "artifact") == [
        "dataset_version",
        "model_version",
        "run",
        "run",
    ]
    assert {n.id for n in held.nodes if n.kind == "artifact"} == files
    # Both directions from the run; a limited depth stops early.
    both = walk(any_workspace, "run", run.run_id)
    assert {n.kind for n in both.nodes} == {"dataset_version", "run", "model_version", "artifact"}
    shallow = walk(any_workspace, "model_version", version.id, "upstream", max_depth=1)
    assert edges(shallow) == {
        ("run", run.run_id, "produced", "model_version", version.id),
        ("artifact", manifest, "packaged_as", "model_version", version.id),
    }

    # Logging the same input twice records one edge.
    with cauce.start_run(run_id=run.run_id):
        cauce.log_input(train)
    assert len(walk(any_workspace, "run", run.run_id, "upstream").edges) == 2
    with pytest.raises(InvalidInput, match="direction"):
        walk(any_workspace, "run", run.run_id, "sideways")  # type: ignore[arg-type]


def test_references_resolve_to_kind_and_id(any_workspace: Workspace) -> None:
    model, frame = trained()
    data = cauce.data.register("customers", frame)
    newer = cauce.data.register("customers", frame.head(5))
    with cauce.start_run() as run:
        version = cauce.log_model(model, "model", registered_model="churn")
    cauce.models.set_alias("churn", "champion", 1)

    assert refs.resolve("models:/churn/1") == ("model_version", version.id)
    assert refs.resolve("models:/churn@champion") == ("model_version", version.id)
    assert refs.resolve("models:/churn") == ("model_version", version.id)
    assert refs.resolve(f"runs:/{run.run_id}") == ("run", run.run_id)
    assert refs.resolve(f"runs:/{run.run_id}/model") == ("run", run.run_id)
    assert refs.resolve("datasets:/customers@1") == ("dataset_version", data.id)
    assert refs.resolve("customers@2") == ("dataset_version", newer.id)
    assert refs.resolve("datasets:/customers") == ("dataset_version", newer.id)
    assert (data.version, newer.version) == (1, 2)

    for missing in (
        "models:/churn/9",
        "models:/nope",
        "runs:/" + "f" * 32,
        "datasets:/customers@3",
        "datasets:/nope@1",
    ):
        with pytest.raises(NotFound):
            refs.resolve(missing)
    for bad in (
        "churn",
        "datasets:/customers@two",
        "datasets:/customers@",
        "customers@v",
        "datasets:/customers@²",
        "runs:/",
        "models:/churn/x",
    ):
        with pytest.raises(InvalidInput):
            refs.resolve(bad)


def test_dataset_versions_are_content_addressed_and_bad_tables_are_refused(
    any_workspace: Workspace,
) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    first = cauce.data.register("t", frame)
    assert cauce.data.register("t", frame.set_index(pd.Index([7, 8]))).id == first.id
    assert cauce.data.register("t", frame.head(1)).version == 2
    assert cauce.data.get_version("t@v1").id == first.id
    pd.testing.assert_frame_equal(cauce.data.load("t@1"), frame)
    for table, message in (
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "duplicate column names: 'a'"),
        (pd.DataFrame({"ok": [1, 2], "cells": [[1], [2]]}), "column 'cells'"),
        (pd.DataFrame({"mixed": [1, "x"]}), "cannot be stored as Parquet"),
    ):
        with pytest.raises(InvalidInput, match=message):
            cauce.data.register("t", table)
    assert [v.version for v in cauce.data.versions("t")] == [1, 2]

    # Concurrent registrations: distinct tables get consecutive numbers, equal ones share one.
    at_once(
        [
            partial(cauce.data.register, "t", pd.DataFrame({"a": [v], "b": ["z"]}))
            for v in (10, 20, 30, 30)
        ]
    )
    assert [v.version for v in cauce.data.versions("t")] == [1, 2, 3, 4, 5]


def test_artifacts_are_nodes_between_runs_and_model_versions(
    any_workspace: Workspace, tmp_path: Path
) -> None:
    model, _ = trained()
    notes = tmp_path / "notes.txt"
    notes.write_text("same bytes")
    with cauce.start_run(run_name="fit") as run:
        cauce.log_artifact(notes, artifact_path="docs")
        version = cauce.log_model(model, "model", registered_model="churn")
    with cauce.start_run(run_name="copy") as other:
        cauce.log_artifact(notes)  # the same content: the same node
    sha = hashlib.sha256(b"same bytes").hexdigest()

    up = walk(any_workspace, "artifact", sha, "upstream")
    assert edges(up) == {
        ("run", run.run_id, "logged", "artifact", sha),
        ("run", other.run_id, "logged", "artifact", sha),
    }
    assert up.root.label == f"artifact docs/notes.txt (sha256:{sha[:12]})"
    assert walk(any_workspace, "artifact", sha, "downstream").edges == []

    # From the model version to its manifest blob, and from that blob back to the run.
    manifest = version.spec_sha256
    down = walk(any_workspace, "artifact", manifest, "downstream")
    assert edges(down) == {("artifact", manifest, "packaged_as", "model_version", version.id)}
    back = walk(any_workspace, "artifact", manifest, "upstream")
    assert edges(back) == {("run", run.run_id, "logged", "artifact", manifest)}
    # The model's other files are downstream of the run only, not of other versions.
    weights = version.files["model.skops"]
    assert edges(walk(any_workspace, "artifact", weights, "both")) == {
        ("run", run.run_id, "logged", "artifact", weights)
    }

    # References: a full sha256 or a unique prefix, any case.
    assert refs.resolve(f"artifacts:/{sha}") == ("artifact", sha)
    assert refs.resolve(f"artifacts:/{sha[:8].upper()}") == ("artifact", sha)
    with pytest.raises(NotFound, match=r"artifact .0+. does not exist"):
        refs.resolve("artifacts:/" + "0" * 64)
    for bad in ("artifacts:/abc", "artifacts:/" + "g" * 64, "artifacts:/" + "a" * 65):
        with pytest.raises(InvalidInput, match="sha256"):
            refs.resolve(bad)


def test_step_runs_link_the_blobs_they_take_and_output(any_workspace: Workspace) -> None:
    @cauce.step
    def double(frame: pd.DataFrame) -> pd.DataFrame:
        return frame * 2

    @cauce.pipeline
    def doubling(frame: pd.DataFrame):  # type: ignore[no-untyped-def]
        return double(frame)

    given = pd.DataFrame({"a": [1, 2]})
    run = doubling.run(frame=given)
    step = run.steps["double"]
    argument = step.inputs["frame"]["sha256"]
    assert step.output is not None
    output = step.output["sha256"]
    graph = walk(any_workspace, "step_run", step.id)
    assert {
        ("artifact", argument, "input", "step_run", step.id),
        ("step_run", step.id, "output", "artifact", output),
    } <= edges(graph)
    # From the output blob back to the pipeline run that made it.
    up = walk(any_workspace, "artifact", output, "upstream")
    assert ("pipeline_run", run.id) in {(n.kind, n.id) for n in up.nodes}
    assert up.root.label == f"artifact application/vnd.apache.parquet (sha256:{output[:12]})"


def test_cauce_lineage_shows_artifacts(workspace: Workspace, tmp_path: Path) -> None:
    model, _ = trained()
    with cauce.start_run(run_name="fit") as run:
        version = cauce.log_model(model, "model", registered_model="churn")
    home = tmp_path / "ws"
    manifest = version.spec_sha256
    shown = cauce_cli(home, "lineage", "models:/churn/1", "-d", "upstream").stdout
    label = f"artifact model/cauce-model.yaml (sha256:{manifest[:12]})"
    assert f"{label}  →  model churn v1  (packaged_as)" in shown
    assert f"run fit ({run.run_id[:8]})  →  {label}  (logged)" in shown

    back = json.loads(
        cauce_cli(home, "lineage", f"artifacts:/{manifest[:10]}", "-d", "upstream", "--json").stdout
    )
    assert back["root"] == {"kind": "artifact", "id": manifest, "label": label}
    assert [(n["kind"], n["id"]) for n in back["nodes"] if n["kind"] == "run"] == [
        ("run", run.run_id)
    ]
    missing = cauce_cli(home, "lineage", "artifacts:/" + "0" * 12, check=False)
    assert_one_line_error(missing, "artifact", "does not exist")


def test_an_artifact_reference_resolves_through_a_server_too(
    seam_workspace: Workspace, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("a note")
    with cauce.start_run(experiment="refs"):
        cauce.log_artifact(notes)
    sha = hashlib.sha256(b"a note").hexdigest()
    assert refs.resolve(f"artifacts:/{sha[:10].upper()}") == ("artifact", sha)
    with pytest.raises(NotFound, match=r"artifact .0+. does not exist"):
        refs.resolve("artifacts:/" + "0" * 64)
    with pytest.raises(InvalidInput, match="sha256"):
        refs.resolve("artifacts:/abc")
