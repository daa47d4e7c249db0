"""Stored traces as the rows of a dataset: what really happened, as an evaluation's data."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cauce.errors import NotFound
from cauce.genai.tracing.reading import (
    latest_expectations,
    latest_results,
    root_span,
    trace_conditions,
    trace_duration_ms,
    with_root,
)
from cauce.genai.tracing.spans import flush
from cauce.operations import operation
from cauce.store.schema import traces
from cauce.validation import check_limit
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.data.assets import DatasetVersion


def to_dataset(
    name: str,
    *,
    trace_name: str | None = None,
    status: str | None = None,
    since_ms: int | None = None,
    session_id: str | None = None,
    tag: str | None = None,
    limit: int = 10_000,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """Register recorded traces as a dataset version, one row per trace, oldest first: an
    evaluation dataset made of what really happened.

    Columns: ``trace_id``, ``name``, ``started_at``, ``status``, ``duration_ms``, tokens and
    ``cost``; ``session_id`` and ``user_id`` where traces have them; a flow's inputs and
    outputs as ``inputs.*`` and ``outputs.*``; a bare model call's last user message and
    answer as ``inputs.question`` and ``outputs.answer``; and the latest evaluation result of
    each name on the root span, its score as ``eval.NAME`` and its label as
    ``eval.NAME.label``. Texts are what the trace kept: already redacted, and missing when
    content capture was off. ``tag`` (``KEY`` or ``KEY=VALUE``) takes the traces a person or
    an application tagged: ``golden``, ``verdict=wrong``.
    """
    import pandas as pd

    from cauce.data.assets import register

    ws = workspace or current()
    flush(ws)
    rows = trace_rows(
        trace_name=trace_name,
        status=status,
        since_ms=since_ms,
        session_id=session_id,
        tag=tag,
        limit=limit,
        workspace=ws,
    )
    if not rows:
        raise NotFound("no traces match", hint="cauce traces list shows what is recorded")
    return register(
        name,
        pd.DataFrame(rows),
        description=f"{len(rows)} traces turned into a dataset",
        allow_schema_change=True,
        workspace=ws,
    )


@operation("GET /trace-rows")
def trace_rows(
    *,
    trace_name: str | None = None,
    status: str | None = None,
    since_ms: int | None = None,
    session_id: str | None = None,
    tag: str | None = None,
    limit: int = 10_000,
    workspace: Workspace | None = None,
) -> list[dict[str, Any]]:
    """Stored traces as the rows of :func:`to_dataset`, oldest first (a session's: its
    conversation, turn by turn)."""
    ws = workspace or current()
    check_limit(limit)
    conditions = trace_conditions(
        name=trace_name, status=status, session_id=session_id, tag=tag, since_ms=since_ms
    )
    # Within a millisecond, by the root span's ns: a conversation's turns in the order taken.
    order = (traces.c.started_at, root_span.c.started_ns, traces.c.id)
    query = with_root(root_span.c.attributes).where(*conditions).order_by(*order).limit(limit)
    with ws.store.read() as conn:
        found = conn.execute(query).all()
    rows = []
    for row in found:
        record: dict[str, Any] = {
            "trace_id": row.id,
            "name": row.name,
            "started_at": row.started_at,
            "status": row.status,
            "duration_ms": trace_duration_ms(row),
            "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens,
            "cost": row.cost,
        }
        for key in ("session_id", "user_id"):
            if getattr(row, key) is not None:
                record[key] = getattr(row, key)
        if row.attributes is not None:  # the root span is stored
            record.update(_content_columns(row.attributes))
            record.update(_result_columns(row.events))
            record.update(_expectation_columns(row.events))
        rows.append(record)
    return rows


def _result_columns(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest evaluation result of each name: its score as ``eval.NAME``, its label as
    ``eval.NAME.label`` (a label-only correction leaves no stale score behind)."""
    found: dict[str, Any] = {}
    for name, a in latest_results(events).items():
        for key, column in (("value", f"eval.{name}"), ("label", f"eval.{name}.label")):
            if a.get(f"gen_ai.evaluation.score.{key}") is not None:
                found[column] = a[f"gen_ai.evaluation.score.{key}"]
    return found


def _expectation_columns(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The latest expectation of each name as ``expectations.NAME``."""
    return {
        f"expectations.{name}": _cell(value) for name, value in latest_expectations(events).items()
    }


def _content_columns(attributes: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, prefix in (("cauce.input", "inputs"), ("cauce.output", "outputs")):
        value = _json(attributes.get(key))
        if isinstance(value, dict):
            found.update({f"{prefix}.{k}": _cell(v) for k, v in value.items()})
    messages = _json(attributes.get("gen_ai.input.messages"))
    if isinstance(messages, list):
        users = [
            m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "user"
        ]
        if users:
            found.setdefault("inputs.question", users[-1])
    answer = _json(attributes.get("gen_ai.output.messages"))
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        found.setdefault("outputs.answer", answer[0].get("content"))
    return found


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def _cell(value: Any) -> Any:
    return (
        value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)
    )
