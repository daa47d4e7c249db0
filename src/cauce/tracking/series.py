"""A metric's series, downsampled in the store for charts: at most ``points`` values, the
lowest and the highest of each of ``points / 2`` equal slices of the step range, so that a
spike survives; a range that holds few enough values comes back whole (``exact``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select

from cauce.errors import InvalidInput
from cauce.operations import operation
from cauce.store.schema import metrics
from cauce.validation import check_key
from cauce.workspace import Workspace, current

__all__ = ["MAX_POINTS", "Series", "metric_series", "metric_steps"]

MAX_POINTS = 5000


@dataclass(frozen=True)
class Series:
    """Steps and values in step order; a NaN or infinite value is None (a gap)."""

    steps: list[int]
    values: list[float | None]
    exact: bool  # every value of the range, not a downsampled part
    total: int  # values in the range


@operation("GET /runs/{run_id}/metric-series")
def metric_series(
    run_id: str,
    key: str,
    points: int = 1000,
    low: int | None = None,
    high: int | None = None,
    *,
    workspace: Workspace | None = None,
) -> Series:
    """A metric's values within steps ``low``..``high`` (both included; the whole run by
    default), downsampled to ``points`` at most."""
    from cauce.tracking.runs import _require_run

    ws = workspace or current()
    check_key(key, "metric key")
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= MAX_POINTS:
        raise InvalidInput(f"points runs from 2 to {MAX_POINTS}", details={"field": "points"})
    m = metrics.c
    where: list[Any] = [m.run_id == run_id, m.key == key]
    if low is not None:
        where.append(m.step >= low)
    if high is not None:
        where.append(m.step <= high)
    with ws.store.read() as conn:
        _require_run(conn, run_id)
        total, first, last = conn.execute(
            select(func.count(), func.min(m.step), func.max(m.step)).where(*where)
        ).one()
        if total <= points:
            rows = conn.execute(
                select(m.step, m.value, m.is_nan).where(*where).order_by(m.step, m.timestamp, m.id)
            ).all()
        else:
            rows = _extremes(conn, where, first, last, points // 2)
    return Series(
        steps=[r.step for r in rows],
        values=[None if r.is_nan or not math.isfinite(r.value) else r.value for r in rows],
        exact=total <= points,
        total=int(total),
    )


@operation("GET /runs/{run_id}/metric-steps")
def metric_steps(run_id: str, *, workspace: Workspace | None = None) -> dict[str, int]:
    """At how many steps each metric of a run was logged: 1 for a score (logged once, or again
    at the same step), more for a history worth a chart."""
    from cauce.tracking.runs import _require_run

    ws = workspace or current()
    m = metrics.c
    with ws.store.read() as conn:
        _require_run(conn, run_id)
        rows = conn.execute(
            select(m.key, func.count(m.step.distinct())).where(m.run_id == run_id).group_by(m.key)
        ).all()
    return {key: int(count) for key, count in rows}


def _extremes(conn: Connection, where: list[Any], first: int, last: int, slices: int) -> list[Any]:
    """The lowest and highest finite value of each of ``slices`` equal step ranges (a NaN only
    where a slice holds nothing else), in step order: window functions, in one query."""
    m = metrics.c
    width = max(1, math.ceil((last - first + 1) / slices))
    part = ((m.step - first) // width).label("part")
    ranked = (
        select(
            m.id,
            m.step,
            m.timestamp,
            m.value,
            m.is_nan,
            func.row_number()
            .over(partition_by=part, order_by=[m.is_nan, m.value, m.step])
            .label("lowest"),
            func.row_number()
            .over(partition_by=part, order_by=[m.is_nan, m.value.desc(), m.step])
            .label("highest"),
        )
        .where(and_(*where))
        .subquery()
    )
    r = ranked.c
    return list(
        conn.execute(
            select(r.step, r.value, r.is_nan)
            .where((r.lowest == 1) | (r.highest == 1))
            .order_by(r.step, r.timestamp, r.id)
        ).all()
    )
