"""A pipeline run in a real browser: its DAG of steps, cached ones marked."""

from __future__ import annotations

from typing import Any

import pytest

import cauce
from cauce.workspace import Workspace

pytestmark = pytest.mark.slow


@cauce.step
def prepare(n: int) -> list[int]:
    return list(range(n))


@cauce.step
def features(rows: list[int]) -> list[int]:
    return [r * r for r in rows]


@cauce.step
def train(rows: list[int], extra: list[int]) -> float:
    return sum(extra) / max(1, len(rows))


@cauce.pipeline
def retrain(n: int = 5) -> float:
    rows = prepare(n)
    return train(rows, features(rows))


def test_a_pipeline_run_shows_its_dag(ui: Any, remote_workspace: Workspace) -> None:
    retrain.run(n=5)
    run = retrain.run(n=6)
    ui.goto(ui.at("/ui/pipelines"))
    ui.locator(f'a[href$="/ui/pipelines/{run.id}"]').click()
    ui.wait_for_selector("svg g.step")
    assert ui.locator("svg g.step").count() == 3
    assert ui.locator("svg path.edge").count() == 3
    ui.shot("pipeline")
