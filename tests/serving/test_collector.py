"""The collector's files: what one flush writes, whatever the requests it groups."""

from __future__ import annotations

import json

import pandas as pd

from cauce.serving.collector import Collector, Record, files
from cauce.serving.endpoints import Deployment
from cauce.workspace import Workspace


def _deployment(fmt: str) -> Deployment:
    collect = {"requests": True, "responses": True, "sampling": 1.0, "format": fmt}
    return Deployment(
        endpoint="churn", name="blue", id="d1", model_uri="models:/churn/1", model_name="churn",
        model_version=1, model_version_id="v1", signature=None, workers=1, batching=None,
        collect={**collect, "redact": ["email"]}, spec={}, created_at=0, updated_at=0,
    )  # fmt: skip


def _record(i: int, rows: list[dict[str, object]]) -> Record:
    return Record(
        deployment="blue",
        source="live",
        model_version="churn/1",
        correlation_id=f"r{i}",
        timestamp_ms=1_700_000_000_000 + i,
        latency_ms=1.0,
        request=json.dumps({"dataframe_records": rows}).encode(),
        content_type="application/json",
        response=json.dumps({"predictions": [0] * len(rows)}).encode(),
    )


def test_one_flush_keeps_every_column_of_requests_with_different_columns(
    workspace: Workspace,
) -> None:
    for fmt in ("parquet", "jsonl"):
        collector = Collector(workspace, f"churn-{fmt}")
        collector.configure([_deployment(fmt)])
        collector.record(_record(0, [{"age": 30, "charges": 50.0}]))
        collector.record(_record(1, [{"age": 31, "charges": 51.0, "email": "a@example.com"}]))
        collector.record(_record(2, [{"age": 32, "plan": "basic"}]))
        collector.flush()
        collector.close()
        paths = files(
            workspace.settings.state_dir / "collector", f"churn-{fmt}", "blue", "model_inputs"
        )
        assert len(paths) == 1  # the three requests went into one file
        read = pd.read_parquet if fmt == "parquet" else lambda p: pd.read_json(p, lines=True)
        frame = read(paths[0]).set_index("correlation_id")
        assert {"age", "charges", "email", "plan"} <= set(frame.columns), fmt
        assert frame.loc["r1", "email"] == "[redacted]"
        assert pd.isna(frame.loc["r0", "email"]) and pd.isna(frame.loc["r0", "plan"])
        assert frame.loc["r2", "plan"] == "basic" and pd.isna(frame.loc["r2", "charges"])
