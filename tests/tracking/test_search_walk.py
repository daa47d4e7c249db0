"""search_runs ordered by a metric walks the metric's values (tracking/search.py ``_walk``) on
large experiments: it must answer exactly what the plain plan answers, page by page."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from cauce.store.schema import metrics, params, runs
from cauce.tracking import search
from cauce.tracking.experiments import create_experiment
from cauce.workspace import Workspace


def _fill(ws: Workspace, experiment_id: str, other_id: str, rng: random.Random) -> None:
    """Runs whose ``auc`` has ties, a history (the latest step is not the best), a NaN latest
    value, or none at all; some deleted; some in another experiment."""
    rr: list[dict[str, Any]] = []
    mm: list[dict[str, Any]] = []
    pp: list[dict[str, Any]] = []
    for i in range(400):
        rid = uuid.uuid4().hex
        rr.append(
            {
                "id": rid,
                "experiment_id": other_id if i % 7 == 0 else experiment_id,
                "name": f"run-{i}",
                "status": "FINISHED",
                "start_time": 1_000 + rng.randrange(50),  # ties on start_time too
                "user": "t",
                "lifecycle_stage": "deleted" if i % 11 == 0 else "active",
            }
        )
        pp.append({"run_id": rid, "key": "model", "value": rng.choice("ab")})
        kind = i % 5
        if kind == 0:
            continue  # no auc
        steps = 3 if kind == 1 else 1
        for step in range(steps):
            value = round(rng.random(), 1)  # few distinct values: many ties
            nan = kind == 2 and step == steps - 1 and i % 2 == 0
            mm.append(
                {
                    "run_id": rid,
                    "key": "auc",
                    "value": 0.0 if nan else value,
                    "is_nan": nan,
                    "step": step,
                    "timestamp": 5 if kind == 3 else rng.randrange(10),
                }
            )
        if kind == 3:  # a second value at the same step and time: the higher id is the latest
            mm.append(
                {
                    "run_id": rid,
                    "key": "auc",
                    "value": round(rng.random(), 1),
                    "is_nan": False,
                    "step": 0,
                    "timestamp": 5,
                }
            )
    with ws.store.engine.begin() as conn:
        conn.execute(runs.insert(), rr)
        conn.execute(metrics.insert(), mm)
        conn.execute(params.insert(), pp)


@pytest.mark.parametrize("walk_rows", [(1,), (1, 3), (4, 32)])
def test_the_walk_answers_what_the_plain_plan_answers(
    local_workspace: Workspace, monkeypatch: pytest.MonkeyPatch, walk_rows: tuple[int, ...]
) -> None:
    rng = random.Random(3)
    exp = create_experiment("big").experiment_id
    other = create_experiment("other").experiment_id
    _fill(local_workspace, exp, other, rng)
    cases = [
        ("big", None, ["metrics.auc DESC"]),
        ("big", None, ["metrics.auc"]),
        ("big", "params.model = 'a'", ["metrics.auc DESC", "params.model"]),
        ("big", "metrics.auc > 0.3", ["metrics.auc DESC", "start_time"]),
        (["big", "other"], "params.model = 'b'", ["metrics.auc ASC"]),
        (None, None, ["metrics.auc DESC"]),
        ("big", "metrics.auc > 2", ["metrics.auc DESC"]),  # no match: the plain plan answers
    ]
    for experiment, filter, order in cases:
        for lifecycle in ("active", "all"):
            for max_results, offset in [(5, 0), (7, 3), (50, 40), (100, 250), (1000, 0)]:
                kwargs = {
                    "filter": filter,
                    "order_by": order,
                    "max_results": max_results,
                    "offset": offset,
                    "lifecycle": lifecycle,
                }
                monkeypatch.setattr(search, "PLAIN_UP_TO", 10**9)  # never walk
                plain = [r.info.run_id for r in search.search_runs(experiment, **kwargs)]
                monkeypatch.setattr(search, "PLAIN_UP_TO", 1)
                monkeypatch.setattr(search, "WALK_ROWS", walk_rows)
                walked = [r.info.run_id for r in search.search_runs(experiment, **kwargs)]
                assert walked == plain, (experiment, kwargs)


def test_a_small_experiment_is_not_walked(
    local_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = create_experiment("small").experiment_id
    _fill(local_workspace, exp, create_experiment("o").experiment_id, random.Random(1))
    walks: list[Any] = []
    real = search._walk
    monkeypatch.setattr(search, "_walk", lambda *a: walks.append(a) or real(*a))
    search.search_runs("small", order_by=["metrics.auc DESC"], max_results=10)
    assert walks == []  # 400 runs: below PLAIN_UP_TO
    monkeypatch.setattr(search, "PLAIN_UP_TO", 100)
    found = search.search_runs("small", order_by=["metrics.auc DESC"], max_results=10)
    assert len(walks) == 1 and len(found) == 10
