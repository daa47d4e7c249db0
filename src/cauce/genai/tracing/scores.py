"""Evaluation results and feedback on stored traces: ``gen_ai.evaluation.result`` events on
their spans, an evaluator's or a person's; what they said, summed by name; and what a trace
should have answered (``cauce.expectation`` events, ground truth a reviewer gives)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, select

from cauce.errors import InvalidInput, NotFound
from cauce.genai.tracing.attributes import (
    EVALUATION_EVENT,
    EXPECTATION_EVENT,
    EXPECTATION_NAME,
    EXPECTATION_VALUE,
    check_evaluation_name,
    check_hex,
    evaluation_attributes,
)
from cauce.genai.tracing.reading import latest_results, root_span, trace_conditions
from cauce.genai.tracing.spans import flush
from cauce.operations import operation
from cauce.store.schema import spans, traces
from cauce.workspace import Workspace, current


def record_evaluation(
    trace_id: str,
    span_id: str,
    name: str,
    score: float | None,
    label: str | None,
    explanation: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Attach a ``gen_ai.evaluation.result`` event to a stored span (an evaluation run after
    the trace was recorded)."""
    ws = workspace or current()
    flush(ws)
    add_evaluation(trace_id, span_id, name, score, label, explanation, workspace=ws)


@operation("POST /traces/{trace_id}/spans/{span_id}/evaluations")
def add_evaluation(
    trace_id: str,
    span_id: str,
    name: str,
    score: float | None,
    label: str | None,
    explanation: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Attach a ``gen_ai.evaluation.result`` event to a span of the store."""
    _check_result(name, score, label, explanation, "")
    ws = workspace or current()
    with ws.store.write() as conn:
        row = conn.execute(
            select(spans.c.events).where(spans.c.trace_id == trace_id, spans.c.span_id == span_id)
        ).first()
        if row is None:
            raise NotFound(f"trace {trace_id} has no span {span_id}")
        event = {
            "name": EVALUATION_EVENT,
            "time_ns": time.time_ns(),
            "attributes": evaluation_attributes(name, score, label, explanation),
        }
        conn.execute(
            spans.update()
            .where(spans.c.trace_id == trace_id, spans.c.span_id == span_id)
            .values(events=[*row.events, event])
        )


def log_feedback(
    trace_id: str,
    name: str,
    score: float | None = None,
    label: str | None = None,
    explanation: str | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Feedback on a stored trace (a person's thumbs up, a rating, a correction): an
    evaluation result on its root span, as an evaluator's is, so ``to_dataset`` makes its score
    the column ``eval.NAME`` and its label ``eval.NAME.label``. A GenAI endpoint sends each
    answer's trace id in its ``cauce-trace-id`` header."""
    check_hex(trace_id, 32, "trace_id")
    if score is None and label is None:
        raise InvalidInput("feedback needs a score, a label or both", details={"field": "score"})
    _check_result(name, score, label, explanation, "")
    ws = workspace or current()
    flush(ws)
    if not add_root_evaluations([(trace_id, name, score, label, explanation)], workspace=ws):
        raise NotFound(
            f"no trace {trace_id}",
            hint="a GenAI endpoint stores an answer's trace within seconds; "
            "cauce traces list shows the stored ones",
        )


def log_expectation(
    trace_id: str,
    name: str,
    value: Any,
    *,
    span_id: str | None = None,
    workspace: Workspace | None = None,
) -> None:
    """What a trace should have answered (a reviewer's ground truth; any JSON value), on its
    root span or the span named; the latest of a name counts. ``to_dataset`` makes it the
    column ``expectations.NAME``, which an evaluation reads as the reference."""
    _expectation_text(value)  # refused here, before it travels to a server
    ws = workspace or current()
    flush(ws)
    add_expectation(trace_id, name, value, span_id=span_id, workspace=ws)


@operation("POST /traces/{trace_id}/expectations")
def add_expectation(
    trace_id: str,
    name: str,
    value: Any,
    *,
    span_id: str | None = None,
    workspace: Workspace | None = None,
) -> None:
    """:func:`log_expectation` on the store."""
    check_hex(trace_id, 32, "trace_id")
    check_evaluation_name(name, "name")
    text = _expectation_text(value)
    event = {
        "name": EXPECTATION_EVENT,
        "time_ns": time.time_ns(),
        "attributes": {EXPECTATION_NAME: name, EXPECTATION_VALUE: text},
    }
    ws = workspace or current()
    with ws.store.write() as conn:
        where = [spans.c.trace_id == trace_id]
        query = select(spans.c.span_id, spans.c.events)
        if span_id is None:
            query = query.join(
                traces,
                and_(traces.c.id == spans.c.trace_id, traces.c.root_span_id == spans.c.span_id),
            )
        else:
            where.append(spans.c.span_id == span_id)
        row = conn.execute(query.where(*where)).first()
        if row is None:
            raise NotFound(
                f"trace {trace_id} has no span {span_id}" if span_id else f"no trace {trace_id}",
                hint="cauce traces list shows the stored ones",
            )
        conn.execute(
            spans.update()
            .where(spans.c.trace_id == trace_id, spans.c.span_id == row.span_id)
            .values(events=[*row.events, event])
        )


def _expectation_text(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"value: a JSON value (text, number, list, mapping), not {type(value).__name__}",
            details={"field": "value"},
        ) from None


def record_root_evaluations(
    results: list[tuple[str, str, float | None, str | None, str | None]],
    *,
    workspace: Workspace | None = None,
) -> int:
    """Attach many evaluation results, ``(trace_id, name, score, label, explanation)``, each
    to its trace's root span, in one transaction; returns how many were attached (a trace
    that is not stored is skipped)."""
    if not results:
        return 0
    ws = workspace or current()
    flush(ws)
    return add_root_evaluations(results, workspace=ws)


@operation("POST /traces/evaluations")
def add_root_evaluations(
    results: list[tuple[str, str, float | None, str | None, str | None]],
    *,
    workspace: Workspace | None = None,
) -> int:
    """:func:`record_root_evaluations` on the store: each result attached to its trace's
    root span, in one transaction; how many were attached."""
    for index, (_, name, score, label, explanation) in enumerate(results):
        _check_result(name, score, label, explanation, f"results.{index}.")
    ws = workspace or current()
    by_trace: dict[str, list[dict[str, Any]]] = {}
    now = time.time_ns()
    for trace_id, name, score, label, explanation in results:
        by_trace.setdefault(trace_id, []).append(
            {
                "name": EVALUATION_EVENT,
                "time_ns": now,
                "attributes": evaluation_attributes(name, score, label, explanation),
            }
        )
    attached = 0
    with ws.store.write() as conn:
        ids = list(by_trace)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            roots = conn.execute(
                select(spans.c.trace_id, spans.c.span_id, spans.c.events)
                .join(
                    traces,
                    (traces.c.id == spans.c.trace_id) & (traces.c.root_span_id == spans.c.span_id),
                )
                .where(spans.c.trace_id.in_(chunk))
            ).all()
            for root in roots:
                added = by_trace[root.trace_id]
                conn.execute(
                    spans.update()
                    .where(spans.c.trace_id == root.trace_id, spans.c.span_id == root.span_id)
                    .values(events=[*root.events, *added])
                )
                attached += len(added)
    return attached


@dataclass(frozen=True)
class ScoreSummary:
    """One evaluation or feedback name over the traces that have it (the latest result of
    each trace): how many, the mean, least and most of their scores, and each label's count."""

    name: str
    traces: int
    scored: int
    mean: float | None
    min: float | None
    max: float | None
    labels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


def list_scores(
    *,
    name: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    since_ms: int | None = None,
    workspace: Workspace | None = None,
) -> list[ScoreSummary]:
    """What the evaluations and the feedback on the traces said, by name (the spans this
    process still buffers written first): of a trace name, a session, a user, a tag (an A/B
    test's arm: ``arm=b``), the traces started at ``since_ms`` or later; each trace counts once
    a name, with its latest result."""
    ws = workspace or current()
    flush(ws)
    return query_scores(
        name=name,
        session_id=session_id,
        user_id=user_id,
        tag=tag,
        since_ms=since_ms,
        workspace=ws,
    )


@operation("GET /trace-scores")
def query_scores(
    *,
    name: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    tag: str | None = None,
    since_ms: int | None = None,
    workspace: Workspace | None = None,
) -> list[ScoreSummary]:
    """The evaluation results on stored traces' root spans summed by name."""
    from sqlalchemy import Text, cast

    ws = workspace or current()
    # Most traces have no result: the database skips them before Python reads their JSON.
    query = (
        select(root_span.c.events)
        .select_from(
            traces.join(
                root_span,
                and_(
                    root_span.c.trace_id == traces.c.id,
                    root_span.c.span_id == traces.c.root_span_id,
                ),
            )
        )
        .where(
            cast(root_span.c.events, Text) != "[]",
            *trace_conditions(
                name=name, session_id=session_id, user_id=user_id, tag=tag, since_ms=since_ms
            ),
        )
    )
    counts: dict[str, int] = {}
    numbers: dict[str, list[float]] = {}
    labels: dict[str, dict[str, int]] = {}
    with ws.store.read() as conn:
        for events in conn.execute(query).scalars():
            for result, a in latest_results(events).items():
                counts[result] = counts.get(result, 0) + 1
                score = a.get("gen_ai.evaluation.score.value")
                if score is not None:
                    numbers.setdefault(result, []).append(float(score))
                label = a.get("gen_ai.evaluation.score.label")
                if label is not None:
                    of_result = labels.setdefault(result, {})
                    of_result[label] = of_result.get(label, 0) + 1
    found = []
    for result in sorted(counts):
        values = numbers.get(result, [])
        found.append(
            ScoreSummary(
                name=result,
                traces=counts[result],
                scored=len(values),
                mean=sum(values) / len(values) if values else None,
                min=min(values) if values else None,
                max=max(values) if values else None,
                labels=dict(sorted(labels.get(result, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
            )
        )
    return found


def _check_result(
    name: str, score: float | None, label: str | None, explanation: str | None, where: str
) -> None:
    """An evaluation result's fields, checked before a transaction that stores them."""
    for field_name, value in (("label", label), ("explanation", explanation)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{where}{field_name}: text", details={"field": where + field_name})
    check_evaluation_name(name, where + "name")
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        raise InvalidInput(f"{where}score: a number", details={"field": where + "score"})
