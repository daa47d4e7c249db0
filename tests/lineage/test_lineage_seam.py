"""Lineage and audit read the same way on a local workspace and through ``cauce server``."""

from __future__ import annotations

from pathlib import Path

import cauce
from cauce.lineage import events, walk
from cauce.workspace import Workspace


def test_walk_and_audit_through_either_side(seam_workspace: Workspace, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("why this run")
    with cauce.start_run(experiment="lineage", run_name="fit") as run:
        cauce.log_artifact(notes)
    graph = walk(seam_workspace, "run", run.info.run_id, "downstream")
    assert graph.root.label == f"run fit ({run.info.run_id[:8]})"
    assert [(e.src.kind, e.dst.kind, e.relation) for e in graph.edges] == [
        ("run", "artifact", "logged")
    ]
    created = events(seam_workspace, entity_id=run.info.run_id, action="run.*")
    assert {e.action for e in created} >= {"run.create", "run.artifacts", "run.end"}
    assert {e.actor for e in created} == {"tester"}
    assert events(seam_workspace, actor="nobody") == []
