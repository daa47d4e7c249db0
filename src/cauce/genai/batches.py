"""Batch runs of a flow over a dataset, and variants compared side by side.

Each line of a dataset version becomes the flow's inputs through a column mapping; lines run on
``concurrency`` threads, each within ``timeout`` and retried ``retries`` times after an error;
a line that fails fails only itself. The lines (inputs, outputs, status, error, attempts,
latency, tokens, cost, trace id) are stored as a new version of the dataset
``flows.<flow>``, and the run as a tracked run (experiment ``flows``) with the flow version,
variant and input dataset as params and the totals as metrics; lineage links the input
dataset version and the flow version to the run, and the run to the lines' dataset version.

Example::

    result = cauce.batches.run("rag-answer", "questions@1", concurrency=4, timeout="60s")
    result.metrics["error_rate"], result.lines.ref
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.config import duration_ms
from cauce.errors import InvalidInput, NotFound
from cauce.genai import connections
from cauce.genai.flows import Flow, LineResult, PythonFlow, load
from cauce.genai.flows.spec import REFERENCE
from cauce.operations import operation
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import pandas as pd

    from cauce.data.assets import DatasetVersion

__all__ = ["BatchResult", "compare", "link_run", "run"]


@dataclass(frozen=True)
class BatchResult:
    """A batch run: its tracked run, the lines' dataset version, totals and each line."""

    run_id: str
    flow: str
    flow_version: int
    variant: str | None
    data: str
    lines: DatasetVersion
    metrics: dict[str, float]
    results: list[LineResult]
    tags: dict[str, str]
    parent_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view (without the lines themselves)."""
        return {
            "run_id": self.run_id,
            "flow": self.flow,
            "flow_version": self.flow_version,
            "variant": self.variant,
            "data": self.data,
            "lines": self.lines.ref,
            "metrics": self.metrics,
        }


def run(
    flow: str | Flow | PythonFlow,
    data: str,
    *,
    mapping: dict[str, str] | None = None,
    variant: str | dict[str, str] | None = None,
    concurrency: int = 4,
    timeout: str | float = "60s",
    retries: int = 0,
    experiment: str = "flows",
    parent_run_id: str | None = None,
    indexes: dict[str, int] | None = None,
    workspace: Workspace | None = None,
) -> BatchResult:
    """Run a flow over every line of a dataset version (``name@version``; the newest without).

    ``mapping`` maps a flow input to ``${data.COLUMN}`` (default: the column of the same name);
    ``parent_run_id`` makes the tracked run a child of another (a comparison); ``indexes`` pins
    the index versions the lines search (a staged version, before it goes out).
    """
    from cauce.data.assets import get_version
    from cauce.data.assets import load as load_data

    ws = workspace or current()
    loaded = _flow(flow, ws)
    if concurrency < 1 or retries < 0:
        raise InvalidInput("concurrency must be at least 1 and retries at least 0")
    limit_s = duration_ms(timeout) / 1000
    version = get_version(data, workspace=ws)
    frame = load_data(version.ref, workspace=ws)
    lines = _inputs(loaded, frame, mapping)
    shown = variant_text(variant)
    tracked = _TrackedRun(ws, loaded, version, variant, concurrency, limit_s, retries)
    tracked.parent_run_id = parent_run_id
    if indexes:
        tracked.params["indexes"] = ",".join(f"{k}={v}" for k, v in sorted(indexes.items()))
    if isinstance(loaded, Flow):
        # A line's time limit and latency are its own, not the first call's imports.
        connections.warm(loaded.connections, workspace=ws)
    with tracked as run_id:
        results = _run_lines(
            loaded, lines, variant, concurrency, limit_s, retries, ws, indexes or {}
        )
        metrics = _metrics(results)
        from cauce.tracking import runs

        runs.log_metrics(run_id, metrics, workspace=ws)
        table = _table(lines, results, shown)
        stored = _store_lines(ws, loaded, table, run_id)
    return BatchResult(
        run_id=run_id,
        flow=loaded.name,
        flow_version=loaded.version,
        variant=shown,
        data=version.ref,
        lines=stored,
        metrics=metrics,
        results=results,
        tags=tracked.tags,
        parent_run_id=parent_run_id,
    )


def compare(
    flow: str | Flow | PythonFlow,
    data: str,
    variants: list[str | dict[str, str] | None],
    **options: Any,
) -> list[BatchResult]:
    """Batch-run each variant over the same dataset version: one comparison run (experiment
    ``flows``) whose child runs are the variants' batch runs."""
    if not variants:
        raise InvalidInput("name at least one variant to compare")
    ws = options.pop("workspace", None) or current()
    loaded = _flow(flow, ws)
    names = [variant_text(v) or "default" for v in variants]
    with comparison(ws, "flows", f"{loaded.name} compare", loaded.name, data, names) as parent:
        return [
            run(loaded, data, variant=v, parent_run_id=parent, workspace=ws, **options)
            for v in variants
        ]


@contextmanager
def comparison(
    ws: Workspace, experiment: str, name: str, flow: str, data: str, variants: list[str]
) -> Iterator[str]:
    """A parent run for runs compared side by side: FINISHED when they all ran, else FAILED."""
    from cauce.tracking import runs

    safe = re.sub(r"[^\w\-. ]", "-", name)
    info = runs.create_run(experiment, safe, tags={"cauce.comparison": flow}, workspace=ws)
    runs.log_params(
        info.run_id,
        {"flow": flow, "data": data, "variants": ",".join(variants)},
        workspace=ws,
    )
    try:
        yield info.run_id
    except BaseException as exc:
        runs.end_run(info.run_id, "FAILED", error=str(exc)[:1000], workspace=ws)
        raise
    runs.end_run(info.run_id, "FINISHED", workspace=ws)


# -- the lines ---------------------------------------------------------------------------------


def _flow(flow: str | Flow | PythonFlow, ws: Workspace) -> Flow:
    if isinstance(flow, PythonFlow):
        return flow.register(workspace=ws)
    if isinstance(flow, Flow):
        return flow
    return load(flow, workspace=ws)


def _inputs(
    flow: Flow, frame: pd.DataFrame, mapping: dict[str, str] | None
) -> list[dict[str, Any]]:
    names = list(flow.spec.inputs) if flow.spec is not None else None
    if mapping is None:
        if names is None:
            names = list(frame.columns)
        mapping = {n: f"${{data.{n}}}" for n in names}
    columns: dict[str, str] = {}
    for name, ref in mapping.items():
        match = REFERENCE.fullmatch(ref.strip()) if isinstance(ref, str) else None
        column = match.group(2).lstrip(".") if match and match.group(1) == "data" else None
        if column is None:
            raise InvalidInput(f"mapping {name}: write ${{data.COLUMN}}, not {ref!r}")
        if column not in frame.columns:
            raise InvalidInput(
                f"mapping {name}: the dataset has no column {column!r}",
                hint=f"columns: {', '.join(map(str, frame.columns))}",
            )
        columns[name] = column
    records = frame[list(columns.values())].to_dict("records")
    return [{name: _plain(row[column]) for name, column in columns.items()} for row in records]


def _plain(value: Any) -> Any:
    """A table cell as a plain Python value (numpy scalars and NaN made ordinary)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _run_lines(
    flow: Flow,
    lines: list[dict[str, Any]],
    variant: str | dict[str, str] | None,
    concurrency: int,
    limit_s: float,
    retries: int,
    ws: Workspace,
    indexes: dict[str, int],
) -> list[LineResult]:
    def one(inputs: dict[str, Any]) -> LineResult:
        result = _within(flow, inputs, variant, limit_s, ws, indexes)
        attempts = 1
        while result.status == "error" and attempts <= retries:
            attempts += 1
            result = _within(flow, inputs, variant, limit_s, ws, indexes)
        result.attempts = attempts
        return result

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="flow-line") as pool:
        return list(pool.map(one, lines))


def _within(
    flow: Flow,
    inputs: dict[str, Any],
    variant: str | dict[str, str] | None,
    limit_s: float,
    ws: Workspace,
    indexes: dict[str, int],
) -> LineResult:
    """One line within the time limit; a line past it is recorded as a timeout and left to
    finish on its own thread, its result dropped."""
    box: list[LineResult] = []
    started = time.perf_counter()
    worker = threading.Thread(
        target=lambda: box.append(flow.run(inputs, variant=variant, workspace=ws, indexes=indexes)),
        name="flow-line-body",
        daemon=True,
    )
    worker.start()
    worker.join(limit_s)
    if box:
        return box[0]
    return LineResult(
        outputs={},
        status="timeout",
        error=f"the line did not finish within {limit_s:g} s",
        latency_ms=(time.perf_counter() - started) * 1000,
        input_tokens=0,
        output_tokens=0,
        cost=None,
        trace_id=None,
    )


def _metrics(results: list[LineResult]) -> dict[str, float]:
    import numpy as np

    count = len(results)
    ok = [r for r in results if r.status == "ok"]
    latencies = np.array([r.latency_ms for r in ok]) if ok else np.array([0.0])
    costs = [r.cost for r in results if r.cost is not None]
    metrics = {
        "lines": float(count),
        "succeeded": float(len(ok)),
        "failed": float(sum(r.status == "error" for r in results)),
        "timed_out": float(sum(r.status == "timeout" for r in results)),
        "error_rate": (count - len(ok)) / count if count else 0.0,
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "input_tokens": float(sum(r.input_tokens for r in results)),
        "output_tokens": float(sum(r.output_tokens for r in results)),
    }
    if costs:
        metrics["cost"] = float(sum(costs))
    return metrics


def _table(
    lines: list[dict[str, Any]], results: list[LineResult], variant: str | None
) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for number, (inputs, result) in enumerate(zip(lines, results, strict=True)):
        row: dict[str, Any] = {"line": number}
        row.update({f"inputs.{k}": _cell(v) for k, v in inputs.items()})
        row.update({f"outputs.{k}": _cell(v) for k, v in result.outputs.items()})
        row.update(
            {
                "status": result.status,
                "error": result.error,
                "attempts": result.attempts,
                "latency_ms": result.latency_ms,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "cost": result.cost,
                "trace_id": result.trace_id,
                "variant": variant or "default",
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    # A line that failed has no outputs: its output columns are empty, as text.
    for column in frame.columns:
        if column.startswith("outputs.") or column in ("error", "trace_id"):
            frame[column] = frame[column].astype("string")
    return frame


def _cell(value: Any) -> Any:
    """A value as a table cell: text stays text, anything structured becomes JSON."""
    return value if isinstance(value, str) or value is None else json.dumps(value, default=str)


def variant_text(variant: str | dict[str, str] | None) -> str | None:
    if variant is None:
        return None
    if isinstance(variant, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(variant.items()))
    return variant


class _TrackedRun:
    """A tracked run for the batch: params first, FAILED if the batch raises, else FINISHED."""

    def __init__(
        self,
        ws: Workspace,
        flow: Flow,
        data: DatasetVersion,
        variant: str | dict[str, str] | None,
        concurrency: int,
        limit_s: float,
        retries: int,
    ):
        self.ws, self.flow, self.data, self.variant = ws, flow, data, variant
        self.params = {
            "flow": flow.name,
            "flow_version": flow.version,
            "variant": variant_text(variant) or "default",
            "data": data.ref,
            "concurrency": concurrency,
            "timeout_s": limit_s,
            "retries": retries,
        }
        self.run_id = ""
        self.parent_run_id: str | None = None
        # The prompt version each LLM node uses, as its reference resolves now.
        self.prompts = flow.prompt_versions(variant, workspace=ws)
        self.tags = {"cauce.flow": flow.name} | {
            f"cauce.prompt_version.{node}": version.id for node, version in self.prompts.items()
        }

    def __enter__(self) -> str:
        from cauce.tracking import runs

        info = runs.create_run(
            "flows",
            re.sub(
                r"[^\w\-. ]", "-", f"{self.flow.name} v{self.flow.version} {self.params['variant']}"
            ),
            tags=self.tags,
            parent_run_id=self.parent_run_id,
            workspace=self.ws,
        )
        self.run_id = info.run_id
        runs.log_params(self.run_id, self.params, workspace=self.ws)
        runs.log_input(self.run_id, self.data, "flow-input", workspace=self.ws)
        link_run(
            self.run_id,
            flow_version=self.flow.id,
            prompt_versions=[v.id for v in self.prompts.values()],
            index_versions=list(self.flow.index_versions(workspace=self.ws).values()),
            workspace=self.ws,
        )
        return self.run_id

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        from cauce.tracking import runs

        if exc is None:
            runs.end_run(self.run_id, "FINISHED", workspace=self.ws)
        else:
            runs.end_run(self.run_id, "FAILED", error=str(exc)[:1000], workspace=self.ws)


def _store_lines(ws: Workspace, flow: Flow, table: pd.DataFrame, run_id: str) -> DatasetVersion:
    from cauce.data.assets import register

    stored = register(
        f"flows.{flow.name}",
        table,
        description=f"lines of batch run {run_id}",
        allow_schema_change=True,
        workspace=ws,
    )
    link_run(run_id, produced=[stored.id], workspace=ws)
    return stored


@operation("POST /runs/{run_id}/links")
def link_run(
    run_id: str,
    *,
    flow_version: str | None = None,
    prompt_versions: list[str] | None = None,
    index_versions: list[str] | None = None,
    produced: list[str] | None = None,
    workspace: Workspace | None = None,
) -> None:
    """Lineage of a batch or evaluation run, in one transaction: the flow version it ran, the
    prompt and index versions it used, the dataset versions it produced (each by its id)."""
    from sqlalchemy import select

    from cauce.lineage.graph import add_edge
    from cauce.store.schema import (
        dataset_versions,
        flow_versions,
        runs,
    )
    from cauce.store.schema import (
        index_versions as index_versions_table,
    )
    from cauce.store.schema import (
        prompt_versions as prompt_versions_table,
    )

    named = [
        ("run", runs, [run_id], "run_id"),
        ("flow_version", flow_versions, [flow_version] if flow_version else [], "flow_version"),
        ("prompt_version", prompt_versions_table, prompt_versions or [], "prompt_versions"),
        ("index_version", index_versions_table, index_versions or [], "index_versions"),
        ("dataset_version", dataset_versions, produced or [], "produced"),
    ]
    ws = workspace or current()
    with ws.store.write() as conn:
        for kind, table, ids, field_name in named:
            for entity_id in ids:
                if (
                    not isinstance(entity_id, str)
                    or conn.execute(select(table.c.id).where(table.c.id == entity_id)).first()
                    is None
                ):
                    raise NotFound(
                        f"{field_name}: no {kind.replace('_', ' ')} {entity_id!r}",
                        details={"field": field_name},
                    )
        if flow_version:
            add_edge(conn, ("flow_version", flow_version), ("run", run_id), "ran")
        for version in prompt_versions or []:
            add_edge(conn, ("prompt_version", version), ("run", run_id), "used_by")
        for version in index_versions or []:
            add_edge(conn, ("index_version", version), ("run", run_id), "used_by")
        for version in produced or []:
            add_edge(conn, ("run", run_id), ("dataset_version", version), "produced")
