"""The lineage graph: dataset version → run → model version, walked both ways; references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cauce
from cauce.cli import refs
from cauce.errors import InvalidInput, NotFound
from cauce.lineage.graph import walk
from cauce.workspace import Workspace


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

    up = walk(any_workspace, "model_version", version.id, "upstream")
    assert edges(up) == {
        ("dataset_version", train.id, "input", "run", run.run_id),
        ("dataset_version", other.id, "input", "run", run.run_id),
        ("run", run.run_id, "produced", "model_version", version.id),
    }
    assert up.root.label == "model churn v1"
    assert {n.label for n in up.nodes} == {
        "model churn v1",
        f"run fit ({run.run_id[:8]})",
        "dataset customers v1",
        "dataset holdout v1",
    }

    down = walk(any_workspace, "dataset_version", train.id, "downstream")
    assert ("model_version", version.id) in {(n.kind, n.id) for n in down.nodes}
    assert edges(down) == {
        ("dataset_version", train.id, "input", "run", run.run_id),
        ("run", run.run_id, "produced", "model_version", version.id),
    }
    # Downstream of the shared holdout: both runs, one model.
    held = walk(any_workspace, "dataset_version", other.id, "downstream")
    assert sorted(n.kind for n in held.nodes) == [
        "dataset_version",
        "model_version",
        "run",
        "run",
    ]
    # Both directions from the run; a limited depth stops early.
    both = walk(any_workspace, "run", run.run_id)
    assert {n.kind for n in both.nodes} == {"dataset_version", "run", "model_version"}
    shallow = walk(any_workspace, "model_version", version.id, "upstream", max_depth=1)
    assert edges(shallow) == {("run", run.run_id, "produced", "model_version", version.id)}

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
    import threading

    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def register(value: int) -> None:
        start.wait()
        try:
            cauce.data.register("t", pd.DataFrame({"a": [value], "b": ["z"]}))
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(v,)) for v in (10, 20, 30, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.version for v in cauce.data.versions("t")] == [1, 2, 3, 4, 5]
