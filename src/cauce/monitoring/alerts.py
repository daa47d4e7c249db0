"""Alerts: what breached in a monitor run, and the actions it queued.

A monitor run whose signals breach raises an alert that records the breaching values. In the
run's own transaction (the run, its values, the alert and its actions commit together, or none
does) the alert stores its actions (``on_alert``) as pending action runs, audited with the
alert's reason; agents run them (:mod:`cauce.monitoring.actions`): ``webhook`` POSTs the alert
as JSON, ``trigger`` runs a pipeline (retraining), ``log`` writes it to the log.

One incident must not start ten retrainings: within the monitor's ``cooldown`` after an alert
that started its actions (whether a clean run has resolved it since or not, so a signal that
flaps is still one incident), a new breach is stored as ``suppressed`` — visible, with its
values — and starts no action. A run with no breach resolves the monitor's open alerts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cauce.errors import InvalidInput
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.monitoring.actions.queue import ActionRun, enqueue, read_for_alerts
from cauce.operations import operation
from cauce.store import id_matches, new_id, only_match
from cauce.store.schema import alerts, monitors
from cauce.validation import check_limit
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cauce.monitoring.specs import MonitorSpec


__all__ = [
    "Alert",
    "get_alert",
    "list_alerts",
]

STATES = ("open", "suppressed", "resolved")


@dataclass
class Alert:
    """Signal values that crossed their thresholds in one monitor run."""

    id: str
    monitor: str
    monitor_run_id: str
    state: str  # one of STATES
    reason: str
    breaches: list[dict[str, Any]]
    at: int
    resolved_at: int | None = None
    actions: list[ActionRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**self.__dict__, "actions": [a.to_dict() for a in self.actions]}


def describe(breaches: list[dict[str, Any]]) -> str:
    """One line naming what breached, with values and thresholds."""
    parts = []
    for b in breaches:
        value = "n/a" if b["value"] is None else f"{b['value']:.4g}"
        limit = "" if b["threshold"] is None else f" (threshold {b['threshold']:g})"
        where = b["signal"] if b["feature"] == "*" else f"{b['signal']} {b['feature']}"
        parts.append(f"{where} {b['metric']} {value}{limit}")
    return "; ".join(parts)


def _fingerprint(monitor_id: str, breaches: list[dict[str, Any]]) -> str:
    keys = sorted({(b["signal"], b["feature"], b["metric"]) for b in breaches})
    return hashlib.sha256(json.dumps([monitor_id, keys]).encode()).hexdigest()


def raise_alert(
    conn: Connection,
    monitor: Any,
    spec: MonitorSpec,
    run_id: str,
    breaches: list[dict[str, Any]],
    *,
    now: int,
    queue_actions: bool = True,
) -> Alert:
    """Store an alert for a run's breaches and, unless a recent one started them, its pending
    actions (``queue_actions=False``: none), in the caller's transaction (the run's)."""
    reason = f"monitor {spec.name}: {describe(breaches)}"
    a = alerts.c
    # The last alert that started actions, resolved since or not: a signal that flaps
    # (breach, clean, breach) within the cooldown is still one incident.
    recent = conn.execute(
        select(alerts.c.id)
        .where(
            a.monitor_id == monitor.id,
            a.state.in_(("open", "resolved")),
            a.at > now - spec.cooldown,
        )
        .order_by(a.at.desc())
        .limit(1)
    ).scalar()
    state = "suppressed" if recent is not None else "open"
    if recent is not None:
        reason = f"{reason} (within the cooldown of {recent})"
    alert = Alert(new_id(), spec.name, run_id, state, reason, breaches, now)
    conn.execute(
        alerts.insert().values(
            id=alert.id,
            monitor_id=monitor.id,
            monitor_run_id=run_id,
            fingerprint=_fingerprint(monitor.id, breaches),
            state=state,
            breaches=breaches,
            reason=reason,
            at=now,
        )
    )
    add_edge(conn, ("monitor_run", run_id), ("alert", alert.id), "raised")
    audit.record(
        conn,
        "monitor",
        f"alert.{state}",
        "alert",
        alert.id,
        after={"monitor": spec.name, "reason": reason, "run_id": run_id},
    )
    if state == "open" and queue_actions:
        alert.actions = enqueue(conn, alert.id, reason, spec.on_alert, "monitor")
    return alert


def resolve_open(conn: Connection, monitor_id: str, run_id: str, now: int) -> int:
    """Resolve the monitor's open alerts after a run without breaches, in the caller's
    transaction (the run's); return how many."""
    a = alerts.c
    ids = (
        conn.execute(select(a.id).where(a.monitor_id == monitor_id, a.state == "open"))
        .scalars()
        .all()
    )
    if ids:
        conn.execute(alerts.update().where(a.id.in_(ids)).values(state="resolved", resolved_at=now))
        for alert_id in ids:
            audit.record(
                conn, "monitor", "alert.resolve", "alert", alert_id, after={"run_id": run_id}
            )
    return len(ids)


@operation("GET /alerts")
def list_alerts(
    *,
    monitor: str | None = None,
    state: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[Alert]:
    """The latest alerts, newest first, with their actions."""
    ws = workspace or current()
    check_limit(limit)
    if state is not None and state not in STATES:
        raise InvalidInput(
            f"state must be one of {', '.join(STATES)}, not {state!r}", details={"field": "state"}
        )
    a = alerts.c
    with ws.store.read() as conn:
        query = select(alerts, monitors.c.name).join(monitors, monitors.c.id == a.monitor_id)
        if monitor is not None:
            query = query.where(monitors.c.name == monitor)
        if state is not None:
            query = query.where(a.state == state)
        rows = conn.execute(query.order_by(a.at.desc(), a.id.desc()).limit(limit)).all()
        actions = read_for_alerts(conn, [r.id for r in rows])  # two queries for all of them
    return [_alert(r, actions[r.id]) for r in rows]


@operation("GET /alerts/{alert_id}")
def get_alert(alert_id: str, *, workspace: Workspace | None = None) -> Alert:
    """One alert by id, or by the start of its id (4 or more characters) when that names one."""
    ws = workspace or current()
    a = alerts.c
    with ws.store.read() as conn:
        rows = conn.execute(
            select(alerts, monitors.c.name)
            .join(monitors, monitors.c.id == a.monitor_id)
            .where(id_matches(a.id, alert_id))
            .limit(2)
        ).all()
        row = only_match(rows, alert_id, "alert", "alert_id", hint="cauce alerts list")
        return _alert(row, read_for_alerts(conn, [row.id])[row.id])


def _alert(row: Any, actions: list[ActionRun]) -> Alert:
    return Alert(
        row.id,
        row.name,
        row.monitor_run_id,
        row.state,
        row.reason,
        row.breaches,
        row.at,
        row.resolved_at,
        actions,
    )
