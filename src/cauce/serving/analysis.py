"""Rollout analysis: what is measured about a rollout's candidate each interval, and the verdicts.

Every ``analysis.interval`` the candidate is measured over the interval just passed:

- ``error_rate`` and ``latency_p99_ms`` / ``latency_p50_ms`` from what the routers stored
  (:mod:`cauce.serving.metrics`);
- ``prediction_drift``: the Jensen-Shannon distance between the candidate's predictions since
  the stage started and the stable deployment's since the rollout started (once each side has
  ``min_predictions``), from the data collector's records;
- for GenAI deployments, from the candidate's ``genai`` records of the interval:
  ``cost_per_request`` (mean over answers with a known cost), ``tokens_per_request`` (prompt
  and answer), ``ttft_p50_ms`` / ``ttft_p99_ms`` (streamed answers), ``safety_flag_rate`` and
  ``block_rate`` (shares of requests); and a metric with an ``evaluator``: its mean score over a
  seeded sample (``analysis.sample``) of the interval's answered chat requests, once
  ``analysis.min_samples`` are scored;
- any other metric from its ``query``: SQL (DuckDB) over the window's collected records, as the
  tables ``candidate`` and ``stable`` (outputs joined with inputs).

Each measurement gets a verdict against its ``max`` / ``min``: ``ok`` True (within), False
(crossed, with why) or None (could not be measured: fewer than ``min_requests`` requests,
nothing collected). What the rollout then does with the verdicts is
:mod:`cauce.serving.rollouts`' business.
"""

from __future__ import annotations

import json
from typing import Any

from cauce.serving.specs import GENAI_METRICS
from cauce.workspace import Workspace

__all__ = ["analyze", "reads_collected"]

# Measured from the counts routers store (through a server too); every other metric reads the
# data collector's files, which lie where the router runs.
STORED_METRICS = ("error_rate", "latency_p99_ms", "latency_p50_ms")


def reads_collected(spec: dict[str, Any]) -> bool:
    """Whether a rollout's analysis reads the data collector's records (drift, a query, GenAI
    metrics), which only a controller beside the router can read."""
    return any(m["name"] not in STORED_METRICS for m in spec["analysis"]["metrics"])


def analyze(
    ws: Workspace,
    endpoint: str,
    row: Any,
    since: int,
    until: int,
    *,
    mirror: bool = False,
) -> dict[str, dict[str, Any]]:
    """Measure the candidate over ``(since, until]``: each metric's value, bound and verdict.

    ``row`` is the stored rollout; ``mirror`` measures the candidate's mirrored requests (the
    mirror pre-stage) instead of its live ones.
    """
    from cauce.serving.metrics import summarize

    spec = row.spec
    analysis = spec["analysis"]
    sources = ("mirror",) if mirror else ("live",)
    summary = summarize(endpoint, row.candidate, since, until, sources, workspace=ws)
    enough = summary.requests >= analysis["min_requests"]
    windows: dict[str, Any] = {}
    genai: Any = None
    measured: dict[str, dict[str, Any]] = {}
    for metric in analysis["metrics"]:
        name = metric["name"]
        value: float | None
        why = ""
        if name in STORED_METRICS:
            value = getattr(summary, name) if enough else None
            if not enough:
                why = (
                    f"{summary.requests} candidate requests, fewer than {analysis['min_requests']}"
                )
        elif name in GENAI_METRICS or metric.get("evaluator") is not None:
            if genai is None:
                genai = _genai_records(ws, endpoint, row.candidate, since, until, sources)
            if metric.get("evaluator") is not None:
                value, why = _evaluator_score(ws, genai, metric["evaluator"], analysis)
            else:
                value, why = _genai_value(name, genai, analysis["min_requests"])
        elif name == "prediction_drift":
            # The stable side since the rollout began: at 100% it answers nothing new.
            stage = _collected(ws, endpoint, row, row.stage_started_at, until, row.created_at)
            value, why = _prediction_drift(stage, analysis["min_predictions"])
        else:
            if not windows:
                windows = _collected(ws, endpoint, row, since, until)
            value, why = _query(windows, metric["query"])
        measured[name] = _verdict(value, metric, why)
    measured["requests"] = {"value": summary.requests, "ok": True, "why": ""}
    return measured


def _verdict(value: float | None, metric: dict[str, Any], why: str) -> dict[str, Any]:
    bounds = {k: metric[k] for k in ("max", "min") if metric.get(k) is not None}
    if value is None:
        return {"value": None, **bounds, "ok": None, "why": why or "no value"}
    if "max" in bounds and value > bounds["max"]:
        return {
            "value": value,
            **bounds,
            "ok": False,
            "why": f"{value:.4g} > max {bounds['max']:g}",
        }
    if "min" in bounds and value < bounds["min"]:
        return {
            "value": value,
            **bounds,
            "ok": False,
            "why": f"{value:.4g} < min {bounds['min']:g}",
        }
    return {"value": value, **bounds, "ok": True, "why": ""}


def _collected(
    ws: Workspace,
    endpoint: str,
    row: Any,
    since: int,
    until: int,
    stable_since: int | None = None,
) -> dict[str, Any]:
    """The collector's records of the window (for the stable deployment, from ``stable_since``
    when given): candidate and stable, outputs joined to inputs."""
    from cauce.serving.collector import read_window

    root = ws.settings.state_dir / "collector"
    frames: dict[str, Any] = {}
    for role, deployment in (("candidate", row.candidate), ("stable", row.stable)):
        if role == "stable" and stable_since is not None:
            since = stable_since
        parts = {
            collection: read_window(root, endpoint, deployment, collection, since, until)
            for collection in ("model_outputs", "model_inputs")
        }
        outputs, inputs = parts["model_outputs"], parts["model_inputs"]
        if not outputs.empty and not inputs.empty:
            features = inputs.drop(
                columns=[
                    c
                    for c in ("timestamp", "deployment", "model_version", "latency_ms", "source")
                    if c in inputs
                ]
            )
            outputs = outputs.merge(features, on=["correlation_id", "row"], how="left")
        frames[role] = outputs
    return frames


def _prediction_columns(frame: Any) -> list[str]:
    return sorted(c for c in frame.columns if c == "prediction" or c.startswith("prediction_"))


def _prediction_drift(windows: dict[str, Any], least: int) -> tuple[float | None, str]:
    from cauce.stats import jensen_shannon

    candidate, stable = windows["candidate"], windows["stable"]
    for role, frame in (("candidate", candidate), ("stable deployment", stable)):
        if len(frame) < least:
            return None, (
                f"{len(frame)} collected predictions of the {role} since the stage started, "
                f"fewer than {least}" + (" (is collect on?)" if frame.empty else "")
            )
    columns = [c for c in _prediction_columns(candidate) if c in stable.columns]
    if not columns:
        return None, "the two deployments' predictions have no column in common"
    distances = [jensen_shannon(stable[c], candidate[c]) for c in columns]
    known = [d for d in distances if d is not None]
    return (max(known), "") if known else (None, "no predictions to compare")


def _query(windows: dict[str, Any], sql: str) -> tuple[float | None, str]:
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_external_access = false")
        for role, frame in windows.items():
            con.register(role, frame)
        row = con.execute(sql).fetchone()
    except duckdb.Error as exc:
        return None, f"query failed: {str(exc).splitlines()[0]}"
    finally:
        con.close()
    if row is None or row[0] is None:
        return None, "query returned no value"
    try:
        return float(row[0]), ""
    except (TypeError, ValueError):
        return None, f"query returned {row[0]!r}, not a number"


def _genai_records(
    ws: Workspace, endpoint: str, deployment: str, since: int, until: int, sources: tuple[str, ...]
) -> Any:
    """The deployment's ``genai`` records of the window, from the sources judged."""
    from cauce.serving.collector import read_window

    root = ws.settings.state_dir / "collector"
    frame = read_window(root, endpoint, deployment, "genai", since, until)
    if frame.empty:
        return frame
    return frame[frame["source"].isin(sources)].reset_index(drop=True)


def _genai_value(name: str, frame: Any, least: int) -> tuple[float | None, str]:
    """One operational GenAI metric of the window's records."""
    import pandas as pd

    if len(frame) < least:
        return None, f"{len(frame)} collected GenAI requests, fewer than {least}"
    if name == "safety_flag_rate":
        return float(frame["flagged"].astype(bool).mean()), ""
    if name == "block_rate":
        return float(frame["blocked"].astype(bool).mean()), ""
    answered = frame[(frame["status"] < 400) & ~frame["cached"].astype(bool)]
    if name == "tokens_per_request":
        if answered.empty:
            return None, "no answered requests"
        return float((answered["input_tokens"] + answered["output_tokens"]).mean()), ""
    if name == "cost_per_request":
        costs = pd.to_numeric(answered["cost"], errors="coerce").dropna()
        if costs.empty:
            return None, "no answer with a known cost (is a price set?)"
        return float(costs.mean()), ""
    ttft = pd.to_numeric(answered["ttft_ms"], errors="coerce").dropna()
    if ttft.empty:
        return None, "no streamed answers to time"
    return float(ttft.quantile(0.5 if name == "ttft_p50_ms" else 0.99)), ""


def _evaluator_score(
    ws: Workspace, frame: Any, evaluator: Any, analysis: dict[str, Any]
) -> tuple[float | None, str]:
    """The evaluator's mean score over a seeded sample of the window's answered chats."""
    import math

    from cauce.genai.evals.runs import evaluator as make
    from cauce.genai.evals.runs import score
    from cauce.genai.evals.sampling import sample

    chosen = make(evaluator)
    if frame.empty:
        return None, "no GenAI requests collected (is the candidate a GenAI deployment?)"
    rows = frame[
        (frame["operation"] == "chat")
        & (frame["status"] < 400)
        & ~frame["blocked"].astype(bool)
        & frame["completion"].fillna("").str.strip().ne("")
    ].reset_index(drop=True)
    if "contexts" in chosen.inputs:
        rows = rows[rows["contexts"].notna()].reset_index(drop=True)
    picked = rows.iloc[
        sample(rows["correlation_id"].astype(str).tolist(), analysis["sample"], 0, 10_000)
    ].reset_index(drop=True)
    if len(picked) < analysis["min_samples"]:
        return None, (
            f"{len(picked)} sampled answers the {chosen.name} evaluator can score, fewer than "
            f"min_samples {analysis['min_samples']}"
        )
    columns = {"question": "query", "answer": "completion", "contexts": "contexts"}
    picked = picked.assign(
        contexts=picked["contexts"].map(lambda c: json.loads(c) if isinstance(c, str) else c)
    )
    table, _ = score(
        picked,
        [chosen],
        mapping={i: columns[i] for i in chosen.inputs if i in columns},
        judge=analysis.get("judge"),
        workspace=ws,
    )
    scores = [v for v in table[f"score.{chosen.name}"].tolist() if not math.isnan(v)]
    if not scores:
        return None, f"{chosen.name} gave no score"
    return sum(scores) / len(scores), ""
