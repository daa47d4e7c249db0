"""Alerts and the actions they start.

A monitor run whose signals breach raises an alert that records the breaching values. Its
actions (``on_alert``) run one after another, each stored as an ``action_run`` and audited with
the alert's reason: ``webhook`` POSTs the alert as JSON (retried with exponential backoff on
transport errors and 5xx answers), ``trigger`` runs a pipeline (retraining), ``log`` writes it
to the log.

One incident must not start ten retrainings: within the monitor's ``cooldown`` after an alert
that started its actions (whether a clean run has resolved it since or not, so a signal that
flaps is still one incident), a new breach is stored as ``suppressed`` — visible, with its
values — and starts no action. A run with no breach resolves the monitor's open alerts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cauce.errors import CauceError, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.store import new_id, now_ms
from cauce.store.schema import action_runs, alerts, monitors
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.monitoring.specs import Action, MonitorSpec

log = logging.getLogger("cauce.alerts")


@dataclass
class ActionRun:
    """One action an alert started, and how it ended."""

    id: str
    action: str
    target: str
    status: str  # succeeded | failed
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    started_at: int
    ended_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


@dataclass
class Alert:
    """Signal values that crossed their thresholds in one monitor run."""

    id: str
    monitor: str
    monitor_run_id: str
    state: str  # open | suppressed | resolved
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
    ws: Workspace,
    monitor: Any,
    spec: MonitorSpec,
    run_id: str,
    breaches: list[dict[str, Any]],
    *,
    now: int,
    run_actions: bool = True,
) -> Alert:
    """Store an alert for a run's breaches; run its actions unless a recent one is open."""
    reason = f"monitor {spec.name}: {describe(breaches)}"
    a = alerts.c
    with ws.store.write() as conn:
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
    if state == "open" and run_actions:
        for action in spec.on_alert:
            alert.actions.append(run_action(ws, alert, action))
    return alert


def resolve_open(ws: Workspace, monitor_id: str, run_id: str, now: int) -> int:
    """Resolve the monitor's open alerts after a run without breaches; return how many."""
    a = alerts.c
    with ws.store.write() as conn:
        ids = (
            conn.execute(select(a.id).where(a.monitor_id == monitor_id, a.state == "open"))
            .scalars()
            .all()
        )
        if ids:
            conn.execute(
                alerts.update().where(a.id.in_(ids)).values(state="resolved", resolved_at=now)
            )
            for alert_id in ids:
                audit.record(
                    conn, "monitor", "alert.resolve", "alert", alert_id, after={"run_id": run_id}
                )
    return len(ids)


def _payload(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "monitor": alert.monitor,
        "monitor_run_id": alert.monitor_run_id,
        "at": alert.at,
        "reason": alert.reason,
        "breaches": alert.breaches,
    }


def run_action(ws: Workspace, alert: Alert, action: Action) -> ActionRun:
    """Run one action of an alert; store and audit how it went. Never raises."""
    body = action.body
    target = getattr(body, "url", None) or getattr(body, "pipeline", None) or action.name
    started = now_ms()
    attempts, result, error = 1, None, None
    try:
        if action.name == "webhook":
            attempts, result = _webhook(body, _payload(alert))
        elif action.name == "trigger":
            result = _trigger(ws, body, alert)
        else:
            getattr(log, body.level)("alert %s: %s", alert.id, alert.reason)
            result = {"logged": body.level}
        status = "succeeded"
    except _ActionFailed as exc:
        status, error, attempts = "failed", str(exc), exc.attempts
    except CauceError as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # a retraining pipeline's own bug must not stop the monitor
        log.exception("alert %s: action %s crashed", alert.id, action.name)
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    if action.name == "trigger" and result is not None and result["status"] != "SUCCEEDED":
        status = "failed"
        error = f"pipeline run {result['pipeline_run_id']} ended {result['status']}"
    run = ActionRun(
        new_id(), action.name, target, status, attempts, result, error, started, now_ms()
    )
    with ws.store.write() as conn:
        conn.execute(action_runs.insert().values(alert_id=alert.id, **run.to_dict()))
        if action.name == "trigger" and result is not None:
            pipeline_run = ("pipeline_run", result["pipeline_run_id"])
            add_edge(conn, ("alert", alert.id), pipeline_run, "triggered")
        audit.record(
            conn,
            "monitor",
            f"action.{action.name}",
            "alert",
            alert.id,
            after={
                "action_run_id": run.id,
                "target": target,
                "status": status,
                "reason": alert.reason,
                "error": error,
            },
        )
    return run


class _ActionFailed(Exception):
    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


def _webhook(body: Any, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST the payload; retry transport errors and 5xx with backoff 0.2 s, 0.4 s, 0.8 s …"""
    import httpx

    last = ""
    for attempt in range(1, body.retries + 2):
        try:
            response = httpx.post(
                body.url, json=payload, headers=body.headers, timeout=body.timeout / 1000
            )
            if response.status_code < 500:
                if response.status_code >= 400:
                    raise _ActionFailed(
                        f"webhook {body.url} answered {response.status_code}", attempt
                    )
                return attempt, {"status_code": response.status_code}
            last = f"answered {response.status_code}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt <= body.retries:
            time.sleep(0.2 * 2 ** (attempt - 1))
    raise _ActionFailed(
        f"webhook {body.url} failed after {body.retries + 1} attempts: {last}", body.retries + 1
    )


def _trigger(ws: Workspace, body: Any, alert: Alert) -> dict[str, Any]:
    """Run the pipeline; ``alert_id`` and ``alert_reason`` are passed when it takes them."""
    from cauce.pipelines.loading import load_pipeline

    pipeline = load_pipeline(body.pipeline, root=ws.settings.root)
    params = dict(body.params)
    for key, value in (("alert_id", alert.id), ("alert_reason", alert.reason)):
        if key in pipeline.signature.parameters and key not in params:
            params[key] = value
    result = pipeline.run(executor=body.executor, workspace=ws, **params)
    return {"pipeline_run_id": result.id, "status": result.status}


def list_alerts(
    *,
    monitor: str | None = None,
    state: str | None = None,
    limit: int = 50,
    workspace: Workspace | None = None,
) -> list[Alert]:
    """The latest alerts, newest first, with their actions."""
    ws = workspace or current()
    a = alerts.c
    with ws.store.read() as conn:
        query = select(alerts, monitors.c.name).join(monitors, monitors.c.id == a.monitor_id)
        if monitor is not None:
            query = query.where(monitors.c.name == monitor)
        if state is not None:
            query = query.where(a.state == state)
        rows = conn.execute(query.order_by(a.at.desc(), a.id.desc()).limit(limit)).all()
        return [_alert(conn, r) for r in rows]


def get_alert(alert_id: str, *, workspace: Workspace | None = None) -> Alert:
    """One alert by id (or a unique prefix of it)."""
    ws = workspace or current()
    a = alerts.c
    with ws.store.read() as conn:
        rows = conn.execute(
            select(alerts, monitors.c.name)
            .join(monitors, monitors.c.id == a.monitor_id)
            .where(a.id.startswith(alert_id, autoescape=True))
            .limit(2)
        ).all()
        if len(rows) != 1:
            raise NotFound(
                f"alert {alert_id!r} " + ("does not exist" if not rows else "is ambiguous"),
                hint="cauce alerts list",
            )
        return _alert(conn, rows[0])


def _alert(conn: Any, row: Any) -> Alert:
    r = action_runs.c
    actions = [
        ActionRun(
            x.id,
            x.action,
            x.target,
            x.status,
            x.attempts,
            x.result,
            x.error,
            x.started_at,
            x.ended_at,
        )
        for x in conn.execute(
            select(action_runs).where(r.alert_id == row.id).order_by(r.started_at, r.id)
        )
    ]
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
