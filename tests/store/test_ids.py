"""Ids by their start: the CLI, the UI and the lineage print ids shortened to 8 characters, and
the commands that take an id take that back (:func:`cauce.store.id_matches`)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import cauce
from cauce.errors import InvalidInput, NotFound
from cauce.store import id_matches, only_match
from cauce.store.schema import runs as runs_table
from cauce.tracking import runs
from cauce.workspace import Workspace

# Around the start 3f2a: two ids that start with it, and the ids just below and just above.
INSIDE = ["3f2a" + "0" * 28, "3f2a9c0e" + "f" * 24]
OUTSIDE = ["3f29" + "f" * 28, "3f2b" + "0" * 28, "3f2" + "0" * 29]


@pytest.fixture
def named_runs(any_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ids = iter(INSIDE + OUTSIDE)
    monkeypatch.setattr(runs, "new_id", lambda: next(ids))
    for _ in INSIDE + OUTSIDE:
        with cauce.start_run(experiment="ids"):
            pass
    return any_workspace


def matching(ws: Workspace, given: str) -> list[str]:
    with ws.store.read() as conn:
        query = select(runs_table.c.id).where(id_matches(runs_table.c.id, given))
        return sorted(conn.execute(query).scalars())


def test_an_id_is_found_by_its_start_on_either_database(named_runs: Workspace) -> None:
    assert matching(named_runs, "3f2a") == INSIDE
    assert matching(named_runs, "3F2A9C") == [INSIDE[1]]  # any case
    assert matching(named_runs, OUTSIDE[1]) == [OUTSIDE[1]]  # a whole id
    assert matching(named_runs, OUTSIDE[1].upper()) == [OUTSIDE[1]]
    assert matching(named_runs, "3f2") == []  # under 4 characters: taken as a whole id
    assert matching(named_runs, "3f2a%") == []  # not hex: taken as it is, no wildcard
    assert matching(named_runs, "3f2a_") == []


def test_the_start_of_an_id_is_looked_up_in_its_index(named_runs: Workspace) -> None:
    query = select(runs_table.c.id).where(id_matches(runs_table.c.id, "3f2a9c"))
    with named_runs.store.read() as conn:
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        if named_runs.store.is_sqlite:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "INDEX" in plan and "id>? AND id<?" in plan, plan
        else:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a few rows: else it scans
            plan = " ".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
            assert "Index Cond: ((id >= '3f2a9c'" in plan, plan  # a range, not a filter


def test_one_id_or_a_clear_error() -> None:
    assert only_match(["a"], "3f2a", "alert", "alert_id") == "a"
    with pytest.raises(NotFound, match="alert '3f2a' does not exist") as none:
        only_match([], "3f2a", "alert", "alert_id", hint="cauce alerts list")
    assert none.value.hint == "cauce alerts list" and none.value.details == {"field": "alert_id"}
    with pytest.raises(InvalidInput, match="'3f2a' is the start of several alerts' ids") as many:
        only_match(["a", "b"], "3f2a", "alert", "alert_id")
    assert many.value.hint == "give more of it" and many.value.details == {"field": "alert_id"}
