"""Finished spans and the summaries of their traces, checked and stored: what an exporter
(this process's, or a client's through the server) hands to the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cauce.errors import InvalidInput
from cauce.genai.tracing.attributes import check_hex, check_id
from cauce.operations import operation
from cauce.store import dialect_insert, schema
from cauce.workspace import Workspace, current


@dataclass(frozen=True)
class FinishedSpan:
    """A span that has ended, as an exporter hands it to the store."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    operation: str | None
    started_ns: int
    ended_ns: int
    status: str
    status_message: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class FinishedTrace:
    """A trace whose root span has ended: its root and its spans' sums."""

    id: str
    name: str
    root_span_id: str
    started_at: int
    ended_at: int
    status: str
    span_count: int
    input_tokens: int
    output_tokens: int
    cost: float | None
    session_id: str | None = None
    user_id: str | None = None


@operation("POST /traces/spans", idempotent=True)
def record_spans(
    spans: list[FinishedSpan],
    traces: list[FinishedTrace] | None = None,
    *,
    workspace: Workspace | None = None,
) -> None:
    """Store a batch of finished spans, and the summaries of the traces their roots end, in
    one transaction; a span or trace already stored is kept as it was (so a batch sent again
    changes nothing)."""
    ws = workspace or current()
    summaries = traces or []
    for index, one in enumerate(spans):
        _check_span(one, f"spans.{index}")
    for index, summary in enumerate(summaries):
        _check_trace(summary, f"traces.{index}")
    with ws.store.write() as conn:
        if spans:
            conn.execute(
                dialect_insert(conn, schema.spans).on_conflict_do_nothing(),
                [asdict(s) for s in spans],
            )
        if summaries:
            conn.execute(
                dialect_insert(conn, schema.traces).on_conflict_do_nothing(),
                [asdict(t) for t in summaries],
            )


_KINDS = ("internal", "client", "server", "producer", "consumer")
_STATUSES = ("ok", "error")
_BIG = 2**63


def _check_span(one: FinishedSpan, where: str) -> None:
    check_hex(one.trace_id, 32, f"{where}.trace_id")
    check_hex(one.span_id, 16, f"{where}.span_id")
    if one.parent_id is not None:
        check_hex(one.parent_id, 16, f"{where}.parent_id")
    _check_choice(one.kind, _KINDS, f"{where}.kind")
    _check_choice(one.status, _STATUSES, f"{where}.status")
    if one.operation is not None and len(one.operation) > 32:
        raise InvalidInput(
            f"{where}.operation: at most 32 characters", details={"field": f"{where}.operation"}
        )
    _check_times(one.started_ns, one.ended_ns, where, "started_ns", "ended_ns")
    for name in ("input_tokens", "output_tokens"):
        _check_count(getattr(one, name), f"{where}.{name}")


def _check_trace(one: FinishedTrace, where: str) -> None:
    check_hex(one.id, 32, f"{where}.id")
    check_hex(one.root_span_id, 16, f"{where}.root_span_id")
    _check_choice(one.status, _STATUSES, f"{where}.status")
    _check_times(one.started_at, one.ended_at, where, "started_at", "ended_at")
    for name in ("span_count", "input_tokens", "output_tokens"):
        _check_count(getattr(one, name), f"{where}.{name}")
    for name in ("session_id", "user_id"):
        if getattr(one, name) is not None:
            check_id(getattr(one, name), f"{where}.{name}")


def _check_choice(value: str, choices: tuple[str, ...], field_name: str) -> None:
    if value not in choices:
        raise InvalidInput(
            f"{field_name}: one of {', '.join(choices)}, not {value!r}",
            details={"field": field_name},
        )


def _check_times(start: int, end: int, where: str, first: str, last: str) -> None:
    for name, value in ((first, start), (last, end)):
        _check_count(value, f"{where}.{name}")
    if end < start:
        raise InvalidInput(
            f"{where}.{last} is before {where}.{first}", details={"field": f"{where}.{last}"}
        )


def _check_count(value: int | None, field_name: str) -> None:
    if value is not None and not 0 <= value < _BIG:
        raise InvalidInput(
            f"{field_name}: {value} is not a count from 0 to 2**63-1",
            details={"field": field_name},
        )
