"""GenAI signals: what a window of a GenAI endpoint's records says about its operation and its
answers.

The records are the collector's ``genai`` collection (one row per request, in the columns of
:data:`cauce.serving.collector.GENAI_COLUMNS`: tokens, cost, latency, time to first token,
status, finish reason, safety decisions, the redacted query and completion, the retrieved
contexts). Operational signals compute every metric of their family and judge those given a
maximum (``measured`` for the others):

- ``genai_tokens``: input and output tokens per request the model answered (means; answers from
  the cache left out) and in the window (sums over every record), and their total;
- ``genai_cost``: cost per priced request the model answered (mean) and the window's priced
  total; records without a price (``cost`` null) are counted in the details, never as zero;
- ``genai_latency``: p50/p95/p99 of the latency of answered requests (status < 400, cached
  ones included: callers waited for them) and of the time to first token of the streams the
  model answered;
- ``genai_errors``: the share of requests answered with an error status (≥ 400), and of streams
  the client abandoned;
- ``genai_refusals``: the share of chat requests that were declined, among those answered or
  blocked (a request that failed for another reason is an error, not a refusal): blocked by a
  safety filter, stopped with ``finish_reason`` ``content_filter``, or an answer that opens with
  a refusal phrase (:mod:`cauce.genai.refusals`, five languages);
- ``genai_safety``: the share of requests any safety filter flagged (``flagged``), and blocked.

``genai_quality`` runs evaluators (:mod:`cauce.genai.evals`) on a seeded sample of the window's
answered, unblocked chat requests and judges each mean score against its minimum; query drift
lives in :mod:`cauce.monitoring.query_drift`. Each value is the same dict as the classic
signals' (signal, feature, metric, value, threshold, outcome, details); ``feature`` is ``*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput, NotFound
from cauce.monitoring.drift import BREACHED, MEASURED, NOT_COMPUTED, PASSED, finite
from cauce.monitoring.specs import QUALITY_INPUTS, GenAIQuality, MonitorSpec
from cauce.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compute", "operational", "quality", "queries"]

EXAMPLES = 5  # correlation ids kept in a value's details as examples


def value(
    signal: str,
    metric: str,
    number: float | None,
    limit: float | None,
    details: dict[str, Any],
    *,
    feature: str = "*",
    below: bool = False,
) -> dict[str, Any]:
    """One value; ``limit`` is a maximum (a minimum with ``below``); None: measured only."""
    number = finite(None if number is None else float(number))
    if number is None:
        outcome = NOT_COMPUTED
        details = {"reason": "no value", **details}
    elif limit is None:
        outcome = MEASURED
    else:
        outcome = BREACHED if (number < limit if below else number > limit) else PASSED
    return {
        "signal": signal,
        "feature": feature,
        "metric": metric,
        "value": number,
        "threshold": limit,
        "outcome": outcome,
        "details": details,
    }


def _missing(signal: str, metric: str, limit: float | None, reason: str) -> dict[str, Any]:
    return value(signal, metric, None, limit, {"reason": reason})


def compute(
    ws: Workspace,
    spec: MonitorSpec,
    frame: pd.DataFrame,
    reference_queries: Callable[[], list[str]] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every value of the monitor's GenAI signals over ``frame`` (the window's records), and
    the breaches among them; ``reference_queries`` reads the reference's queries."""
    from cauce.monitoring import query_drift

    values: list[dict[str, Any]] = []
    breaches: list[dict[str, Any]] = []
    for signal in spec.signals:
        if signal.name == "genai_quality":
            found = quality(ws, signal.body, frame)
        elif signal.name == "query_drift":
            assert reference_queries is not None  # the spec demands a reference
            found = query_drift.compute(
                ws, signal.body, reference_queries(), queries(frame), bins=spec.bins
            )
        else:
            found = operational(signal.name, signal.body.limits(), frame)
        values += found
        judged = [v for v in found if v["feature"] == "*"]
        breaches += [v for v in judged if v["outcome"] == BREACHED]
        # As in data drift, a component breaches only with the drifted share it makes.
        if any(v["metric"] == "drifted_share" and v["outcome"] == BREACHED for v in judged):
            breaches += [v for v in found if v["feature"] != "*" and v["outcome"] == BREACHED]
    return values, breaches


# -- reading records --------------------------------------------------------------------------


def _need(frame: pd.DataFrame, *columns: str) -> str | None:
    """Why the records cannot give a metric (a column they lack), or None."""
    absent = [c for c in columns if c not in frame.columns]
    return f"the records have no column {', '.join(absent)}" if absent else None


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(frame[column], errors="coerce")


def _flags(frame: pd.DataFrame, column: str) -> pd.Series:
    """A boolean column as booleans; missing values are False."""
    import pandas as pd

    series = frame[column]
    if series.dtype == bool:
        return series
    text = series.map(lambda v: str(v).strip().lower() if not _absent(v) else "false")
    return pd.Series(text.isin({"true", "1", "1.0", "yes"}).to_numpy(), index=frame.index)


def _flags_or_none(frame: pd.DataFrame, column: str) -> pd.Series:
    """A boolean column as booleans; all False when the records lack it."""
    import pandas as pd

    if column in frame.columns:
        return _flags(frame, column)
    return pd.Series(False, index=frame.index)


def _equals(frame: pd.DataFrame, column: str, text: str) -> pd.Series:
    """Records whose ``column`` is ``text`` (case aside); all False when they lack it."""
    if column not in frame.columns:
        return _flags_or_none(frame, column)
    return _texts(frame, column).str.lower().eq(text)


def _absent(cell: Any) -> bool:
    import pandas as pd

    return not isinstance(cell, (list, dict)) and bool(pd.isna(cell))


def _texts(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].map(lambda v: "" if _absent(v) else str(v))


def _chat(frame: pd.DataFrame) -> pd.Series:
    """Chat requests (records without an ``operation`` column are all chat)."""
    import pandas as pd

    if "operation" not in frame.columns:
        return pd.Series(True, index=frame.index)
    return _equals(frame, "operation", "chat")


def answered(frame: pd.DataFrame) -> pd.Series:
    """Requests the client got a success status for."""
    return _numbers(frame, "status").lt(400)


def upstream_answered(frame: pd.DataFrame) -> pd.Series:
    """Requests answered with success by the model, not from the cache: what per-request
    tokens, cost and time to first token are means of (as the rollout analysis counts them)."""
    return answered(frame) & ~_flags_or_none(frame, "cached")


def queries(frame: pd.DataFrame) -> list[str]:
    """The window's chat queries that are not empty, in record order."""
    if frame.empty or "query" not in frame.columns:
        return []
    texts = _texts(frame[_chat(frame)], "query")
    return [t for t in texts if t.strip()]


def _examples(frame: pd.DataFrame, mask: pd.Series) -> list[str]:
    if "correlation_id" not in frame.columns:
        return []
    return [str(c) for c in frame.loc[mask, "correlation_id"].head(EXAMPLES)]


# -- operational signals ----------------------------------------------------------------------


def operational(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Every metric of one operational signal over the window's records."""
    compute_one = {
        "genai_tokens": _tokens,
        "genai_cost": _cost,
        "genai_latency": _latency,
        "genai_errors": _errors,
        "genai_refusals": _refusals,
        "genai_safety": _safety,
    }[signal]
    values = compute_one(signal, limits, frame)
    if "deployment" not in frame.columns or frame["deployment"].nunique() < 2:
        return values
    # Each deployment's own value beside the endpoint's: which one moved (a canary, say).
    split: dict[str, dict[str, float | None]] = {}
    for deployment, part in frame.groupby("deployment", sort=True):
        for found in compute_one(signal, {}, part.reset_index(drop=True)):
            split.setdefault(found["metric"], {})[str(deployment)] = found["value"]
    return [{**v, "details": {**v["details"], "deployments": split[v["metric"]]}} for v in values]


def _tokens(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    names = (
        "input_tokens_per_request",
        "output_tokens_per_request",
        "input_tokens",
        "output_tokens",
        "total_tokens",
    )
    reason = _need(frame, "input_tokens", "output_tokens", "status")
    if reason:
        return [_missing(signal, n, limits.get(n), reason) for n in names]
    tokens_in = _numbers(frame, "input_tokens").fillna(0)
    tokens_out = _numbers(frame, "output_tokens").fillna(0)
    ok = upstream_answered(frame)
    details = {"requests": len(frame), "answered": int(ok.sum())}
    if "usage_estimated" in frame.columns:  # counted by the gateway, not reported upstream
        details["estimated"] = int(_flags(frame, "usage_estimated").sum())
    out = []
    for name, series in (("input_tokens", tokens_in), ("output_tokens", tokens_out)):
        mean = float(series[ok].mean()) if ok.any() else None
        per = f"{name}_per_request"
        out.append(
            value(signal, per, mean, limits.get(per), details)
            if mean is not None
            else _missing(signal, per, limits.get(per), "no request in the window was answered")
        )
    out.append(value(signal, "input_tokens", tokens_in.sum(), limits.get("input_tokens"), details))
    out.append(
        value(signal, "output_tokens", tokens_out.sum(), limits.get("output_tokens"), details)
    )
    total = tokens_in.sum() + tokens_out.sum()
    out.append(value(signal, "total_tokens", total, limits.get("total_tokens"), details))
    return out


def _cost(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    reason = _need(frame, "cost", "status")
    if reason:
        return [_missing(signal, n, limits.get(n), reason) for n in ("cost_per_request", "cost")]
    cost = _numbers(frame, "cost")
    priced = cost.notna()
    details = {"requests": len(frame), "priced": int(priced.sum())}
    details["unpriced"] = len(frame) - details["priced"]
    if not priced.any():
        reason = "no request in the window has a known price"
        return [
            {**_missing(signal, n, limits.get(n), reason), "details": {**details, "reason": reason}}
            for n in ("cost_per_request", "cost")
        ]
    paid = priced & upstream_answered(frame)
    limit = limits.get("cost_per_request")
    per = (
        value(signal, "cost_per_request", cost[paid].mean(), limit, details)
        if paid.any()
        else _missing(signal, "cost_per_request", limit, "no priced request was answered")
    )
    return [per, value(signal, "cost", cost[priced].sum(), limits.get("cost"), details)]


def _latency(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    import numpy as np

    out = []
    for column, prefix in (("latency_ms", "latency"), ("ttft_ms", "ttft")):
        names = [f"{prefix}_p{q}_ms" for q in (50, 95, 99)]
        reason = _need(frame, column, "status", *(("stream",) if prefix == "ttft" else ()))
        if reason:
            out += [_missing(signal, n, limits.get(n), reason) for n in names]
            continue
        keep = answered(frame)
        if prefix == "ttft":
            keep = upstream_answered(frame) & _flags(frame, "stream")
        numbers = _numbers(frame, column)[keep].dropna().to_numpy(dtype=float)
        if not len(numbers):
            what = "answered stream with a time to first token" if prefix == "ttft" else "answer"
            out += [_missing(signal, n, limits.get(n), f"no {what} in the window") for n in names]
            continue
        details = {"requests": len(numbers), "max": float(numbers.max())}
        for q, name in zip((50, 95, 99), names, strict=True):
            out.append(value(signal, name, np.percentile(numbers, q), limits.get(name), details))
    return out


def _errors(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    reason = _need(frame, "status")
    if reason:
        out.append(_missing(signal, "error_rate", limits.get("error_rate"), reason))
    else:
        failed = ~answered(frame)
        codes = _texts(frame[failed], "error") if "error" in frame.columns else None
        details: dict[str, Any] = {"requests": len(frame), "errors": int(failed.sum())}
        statuses = _numbers(frame, "status")[failed].fillna(-1).astype(int)
        details["statuses"] = {str(k): int(v) for k, v in statuses.value_counts().items()}
        if codes is not None:
            counted = codes.replace("", "unknown").value_counts().head(10)
            details["codes"] = {str(k): int(v) for k, v in counted.items()}
        details["examples"] = _examples(frame, failed)
        out.append(value(signal, "error_rate", failed.mean(), limits.get("error_rate"), details))
    reason = _need(frame, "stream", "abandoned")
    if reason:
        out.append(_missing(signal, "abandon_rate", limits.get("abandon_rate"), reason))
    else:
        streams = _flags(frame, "stream")
        gone = _flags(frame, "abandoned") & streams
        if not streams.any():
            reason = "no streamed request in the window"
            out.append(_missing(signal, "abandon_rate", limits.get("abandon_rate"), reason))
        else:
            details = {"streams": int(streams.sum()), "abandoned": int(gone.sum())}
            rate = gone.sum() / streams.sum()
            out.append(value(signal, "abandon_rate", rate, limits.get("abandon_rate"), details))
    return out


def _refusals(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    from cauce.genai.refusals import refusal

    limit = limits.get("refusal_rate")
    reason = _need(frame, "status", "completion")
    if reason:
        return [_missing(signal, "refusal_rate", limit, reason)]
    blocked = _flags_or_none(frame, "blocked")
    counted = _chat(frame) & (answered(frame) | blocked)
    if not counted.any():
        return [_missing(signal, "refusal_rate", limit, "no chat request answered or blocked")]
    filtered = counted & ~blocked & _equals(frame, "finish_reason", "content_filter")
    languages = _texts(frame, "completion").map(refusal)
    phrased = counted & ~blocked & ~filtered & languages.notna()
    refused = (counted & blocked) | filtered | phrased
    details: dict[str, Any] = {
        "requests": int(counted.sum()),
        "refusals": int(refused.sum()),
        "blocked": int((counted & blocked).sum()),
        "content_filter": int(filtered.sum()),
        "phrase": int(phrased.sum()),
        "languages": {str(k): int(v) for k, v in languages[phrased].value_counts().items()},
        "examples": _examples(frame, refused),
    }
    return [value(signal, "refusal_rate", refused.sum() / counted.sum(), limit, details)]


def _safety(signal: str, limits: dict[str, float], frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    triggered = _triggered(frame) if "safety" in frame.columns else {}
    for metric, column in (("flag_rate", "flagged"), ("block_rate", "blocked")):
        reason = _need(frame, column)
        if reason:
            out.append(_missing(signal, metric, limits.get(metric), reason))
            continue
        hit = _flags(frame, column)
        details: dict[str, Any] = {"requests": len(frame), column: int(hit.sum())}
        details["filters"] = triggered
        details["examples"] = _examples(frame, hit)
        out.append(value(signal, metric, hit.mean(), limits.get(metric), details))
    return out


def _triggered(frame: pd.DataFrame) -> dict[str, int]:
    """How often each filter triggered, as ``direction filter action`` (``input injection
    block``), over the records' safety decisions."""
    counts: dict[str, int] = {}
    for cell in frame["safety"]:
        decisions = _decisions(cell)
        for d in decisions:
            if isinstance(d, dict) and d.get("triggered", True):
                name = " ".join(str(d.get(k, "?")) for k in ("direction", "filter", "action"))
                counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _decisions(cell: Any) -> list[Any]:
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except ValueError:
            return []
    if hasattr(cell, "tolist"):
        cell = cell.tolist()
    return cell if isinstance(cell, list) else []


# -- quality ----------------------------------------------------------------------------------


def quality(ws: Workspace, body: GenAIQuality, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The mean score of each evaluator over a seeded sample of answered chat requests."""
    import numpy as np

    from cauce.genai.evals.runs import evaluator, score
    from cauce.genai.evals.sampling import sample

    names = body.names()
    reason = _need(frame, "correlation_id", "status", "query", "completion")
    if reason:
        return [_missing("genai_quality", n, body.min.get(n), reason) for n in names]
    blocked = _flags_or_none(frame, "blocked")
    eligible = _chat(frame) & answered(frame) & ~blocked
    eligible &= _texts(frame, "completion").str.strip().ne("")
    pool = frame[eligible].reset_index(drop=True)
    picked = pool.iloc[
        sample(pool["correlation_id"].astype(str).tolist(), body.sample, body.seed, body.max_rows)
    ].reset_index(drop=True)
    if body.references is not None:
        picked = _with_references(ws, body, picked)
    base = {"eligible": len(pool), "sampled": len(picked), "sample": body.sample}
    out = []
    for spec, name in zip(body.evaluators, names, strict=True):
        chosen = evaluator(spec)
        limit = body.min.get(name)
        usable = np.ones(len(picked), dtype=bool)
        if "contexts" in chosen.inputs:
            usable &= _has_contexts(picked).to_numpy()
        if "reference" in chosen.inputs:
            usable &= picked["reference"].notna().to_numpy()
        rows = picked[usable].reset_index(drop=True)
        details: dict[str, Any] = {**base, "scored": 0}
        if len(rows) < body.min_samples:
            why = (
                f"{len(rows)} of {len(picked)} sampled requests can be scored by {name}, "
                f"fewer than min_samples {body.min_samples}"
            )
            out.append(value("genai_quality", name, None, limit, {**details, "reason": why}))
            continue
        mapping = {i: QUALITY_INPUTS[i] for i in chosen.inputs}
        table, means = score(
            rows,
            [chosen],
            mapping=mapping,
            judge=body.judge,
            judge_model=body.judge_model,
            judge_params=body.judge_params or None,
            concurrency=body.concurrency,
            workspace=ws,
        )
        scores = table[f"score.{name}"].to_numpy(dtype=float)
        done = ~np.isnan(scores)
        details["scored"] = int(done.sum())
        if f"{name}.pass_rate" in means:
            details["pass_rate"] = finite(means[f"{name}.pass_rate"])
            details["judge_errors"] = int(table[f"error.{name}"].notna().sum())
        order = np.argsort(np.where(done, scores, np.inf), kind="stable")[:EXAMPLES]
        details["lowest"] = [
            {"correlation_id": str(rows["correlation_id"].iloc[i]), "score": float(scores[i])}
            for i in order
            if done[i]
        ]
        if not done.any():
            why = f"{name} gave no score on the {len(rows)} sampled requests"
            out.append(value("genai_quality", name, None, limit, {**details, "reason": why}))
            continue
        out.append(value("genai_quality", name, scores[done].mean(), limit, details, below=True))
    return out


def _has_contexts(frame: pd.DataFrame) -> pd.Series:
    """Records whose retrieval gave at least one context."""
    if "contexts" not in frame.columns:
        return _flags_or_none(frame, "contexts")
    return frame["contexts"].map(lambda c: bool(_decisions(c)))


def _with_references(ws: Workspace, body: GenAIQuality, frame: pd.DataFrame) -> pd.DataFrame:
    """The sample with the reference answer that arrived for each request (or null)."""
    from cauce.data.assets import load

    assert body.references is not None
    refs = body.references
    try:
        table = load(refs.dataset, workspace=ws)
    except NotFound:
        return frame.assign(reference=None)
    for column, field in ((refs.join_on, "join_on"), (refs.column, "column")):
        if column not in table.columns:
            raise InvalidInput(
                f"references dataset {refs.dataset} has no column {column!r}",
                details={"field": f"signals.genai_quality.references.{field}"},
            )
    keys = table[[refs.join_on, refs.column]].drop_duplicates(refs.join_on)
    keys = keys.rename(columns={refs.join_on: "_join", refs.column: "reference"})
    keys["_join"] = keys["_join"].astype(str)
    merged = frame.drop(columns=["reference"], errors="ignore").assign(
        _join=frame["correlation_id"].astype(str)
    )
    return merged.merge(keys, on="_join", how="left").drop(columns=["_join"])
