"""The action queue: stored action runs and every change of their status.

Each function is one transition, written with a compare-and-set so that several agents on one
store never both make it: :func:`enqueue` (pending, in the alert's transaction), :func:`claim`
(running, under a lease), :func:`renew` and :func:`start_held_run` (the lease goes on),
:func:`finish` (succeeded, failed, or pending again for a retry). All but ``enqueue`` are
operations, each one transaction on the store's side, so that agents work through a server too.
Their ``now`` is the store's side's clock unless given (a test's clock moves it, so that leases
are tested without waiting for them): one clock for every agent, whatever their machines say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select

from cauce.errors import Conflict, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.monitoring.specs import Action, from_store
from cauce.operations import operation
from cauce.pipelines.records import RunStart, RunStarted, start_run_in
from cauce.store import new_id, now_ms
from cauce.store.schema import action_attempts, action_runs, alerts, monitors
from cauce.validation import check_time_ms
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from sqlalchemy import Connection

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
ABANDONED = "abandoned"
DONE = (SUCCEEDED, FAILED)
# A run whose agent died this many times while running it fails, rather than kill a fourth.
ABANDON_LIMIT = 3


@dataclass
class Attempt:
    """One try at an action run: which agent, when, and how it ended."""

    number: int
    agent: str
    outcome: str  # running | succeeded | failed | abandoned
    started_at: int
    ended_at: int | None
    result: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


@dataclass
class ActionRun:
    """One action an alert started: where it stands and every attempt at it."""

    id: str
    action: str
    target: str
    status: str  # pending | running | succeeded | failed
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    started_at: int | None
    ended_at: int | None
    position: int = 0
    idempotency_key: str = ""
    next_attempt_at: int | None = None
    claimed_by: str | None = None
    lease_expires_at: int | None = None
    created_at: int = 0
    history: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**self.__dict__, "history": [a.to_dict() for a in self.history]}


def idempotency_key(alert_id: str, position: int) -> str:
    """The key of an alert's action: the same for every attempt, unique in the store."""
    return f"{alert_id}.{position}"


def target_of(action: Action) -> str:
    """What an action acts on: a webhook's URL, a trigger's pipeline, or ``log``."""
    body = action.body
    return str(getattr(body, "url", None) or getattr(body, "pipeline", None) or action.name)


# -- enqueue ------------------------------------------------------------------------------------


def enqueue(
    conn: Connection, alert_id: str, reason: str, on_alert: Iterable[Action], actor: str
) -> list[ActionRun]:
    """Store one pending run per action inside the alert's transaction; return them."""
    now = now_ms()
    queued = []
    for position, action in enumerate(on_alert):
        run = ActionRun(
            id=new_id(),
            action=action.name,
            target=target_of(action),
            status=PENDING,
            attempts=0,
            result=None,
            error=None,
            started_at=None,
            ended_at=None,
            position=position,
            idempotency_key=idempotency_key(alert_id, position),
            next_attempt_at=now,
            created_at=now,
        )
        conn.execute(
            action_runs.insert().values(
                id=run.id,
                alert_id=alert_id,
                position=position,
                idempotency_key=run.idempotency_key,
                action=run.action,
                target=run.target,
                spec={action.name: action.body.model_dump(mode="json")},
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
        _audit(conn, actor, alert_id, run.id, run.action, run.target, PENDING, reason)
        queued.append(run)
    return queued


# -- claim --------------------------------------------------------------------------------------


@dataclass
class Claim:
    """An action run this worker holds: the attempt it started and what it needs to run it."""

    run_id: str
    number: int
    alert: dict[str, Any]  # the webhook payload: alert_id, monitor, monitor_run_id, at, ...
    spec: dict[str, Any]  # the action as stored
    key: str
    target: str

    @cached_property
    def action(self) -> Action:
        """The action to run."""
        return Action.model_validate(from_store(Action, self.spec))


def _due(now: int, run_id: str | None) -> Any:
    r = action_runs.c
    due = or_(
        and_(r.status == PENDING, r.next_attempt_at <= now),
        and_(r.status == RUNNING, r.lease_expires_at < now),
    )
    return due if run_id is None else and_(due, r.id == run_id)


@operation("POST /action-runs/claims")
def claim(
    agent: str,
    *,
    limit: int,
    lease_ms: int,
    actor: str | None = None,
    now: int | None = None,
    run_id: str | None = None,
    workspace: Workspace | None = None,
) -> tuple[Claim, ...]:
    """Claim up to ``limit`` runs due at ``now`` (pending and due, or running with an expired
    lease; only ``run_id`` when given) for ``agent``, each under a lease of ``lease_ms``, with a
    compare-and-set: of several workers reading the same row, exactly one wins it."""
    ws = workspace or current()
    _check_count(limit, "limit", 0)
    _check_count(lease_ms, "lease_ms", 1)
    now = now_ms() if now is None else check_time_ms(now, "now")
    actor = actor or ws.user
    if limit == 0:
        return ()
    r = action_runs.c
    with ws.store.read() as conn:  # most looks find nothing: no write lock for those
        if conn.execute(select(r.id).where(_due(now, run_id)).limit(1)).first() is None:
            return ()
    due = (
        select(
            action_runs,
            alerts.c.monitor_run_id,
            alerts.c.at,
            alerts.c.reason,
            alerts.c.breaches,
            monitors.c.name.label("monitor"),
        )
        .join(alerts, alerts.c.id == r.alert_id)
        .join(monitors, monitors.c.id == alerts.c.monitor_id)
        .where(_due(now, run_id))
        .order_by(r.created_at, r.alert_id, r.position)
    )
    claimed: list[Claim] = []
    seen: list[str] = []
    with ws.store.write() as conn:
        # A run lost to another worker is no reason to stop: look further until ``limit`` are
        # claimed or none is left (else a worker that lost its first pick would go idle).
        while len(claimed) < limit:
            query = due.where(r.id.not_in(seen)) if seen else due
            rows = conn.execute(query.limit(limit - len(claimed))).all()
            if not rows:
                break
            for row in rows:
                seen.append(row.id)
                found = _claim_one(conn, row, agent, now, lease_ms, actor)
                if found is not None:
                    claimed.append(found)
    return tuple(claimed)


def _check_count(value: Any, what: str, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value < 2**62:
        raise InvalidInput(
            f"{what} must be an integer of {least} or more, got {value!r}"[:200],
            details={"field": what},
        )


def _claim_one(
    conn: Connection, row: Any, agent: str, now: int, lease_ms: int, actor: str
) -> Claim | None:
    r = action_runs.c
    # The compare-and-set: what this worker read must still hold.
    guard = and_(
        r.id == row.id,
        r.status == row.status,
        r.attempts == row.attempts,
        r.lease_expires_at.is_(None)
        if row.lease_expires_at is None
        else r.lease_expires_at == row.lease_expires_at,
    )
    abandoned = 0
    if row.status == RUNNING:  # its agent stopped renewing the lease
        abandoned = 1 + _count(conn, row.id, ABANDONED)
    if abandoned >= ABANDON_LIMIT:
        error = (
            f"abandoned {abandoned} times: the agent running it stopped each time "
            f"(last {row.claimed_by}) before its lease expired"
        )
        _fail(conn, row, guard, now, actor, error)
        return None
    try:
        Action.model_validate(from_store(Action, row.spec))
    except ValidationError as exc:  # a row no retry can run must not block the queue
        _fail(conn, row, guard, now, actor, f"its stored action is not valid: {exc}")
        return None
    number = row.attempts + 1
    changed = conn.execute(
        action_runs.update()
        .where(guard)
        .values(
            status=RUNNING,
            attempts=number,
            claimed_by=agent,
            lease_expires_at=now + lease_ms,
            next_attempt_at=None,
            started_at=func.coalesce(r.started_at, now),
        ),
        execution_options={"preserve_rowcount": True},
    )
    if changed.rowcount != 1:
        return None  # another worker claimed it first
    if abandoned:
        _abandon(conn, row, now)
    conn.execute(
        action_attempts.insert().values(
            id=new_id(),
            action_run_id=row.id,
            number=number,
            agent=agent,
            outcome=RUNNING,
            started_at=now,
        )
    )
    _audit(
        conn,
        actor,
        row.alert_id,
        row.id,
        row.action,
        row.target,
        RUNNING,
        row.reason,
        attempt=number,
        agent=agent,
        error=f"attempt {row.attempts} abandoned: lease expired" if abandoned else None,
    )
    payload = {
        "alert_id": row.alert_id,
        "monitor": row.monitor,
        "monitor_run_id": row.monitor_run_id,
        "at": row.at,
        "reason": row.reason,
        "breaches": row.breaches,
    }
    return Claim(row.id, number, payload, row.spec, row.idempotency_key, row.target)


def _fail(conn: Connection, row: Any, guard: Any, now: int, actor: str, error: str) -> None:
    """End a due run as failed without an attempt (compare-and-set, like a claim)."""
    changed = conn.execute(
        action_runs.update()
        .where(guard)
        .values(status=FAILED, ended_at=now, error=error, claimed_by=None, lease_expires_at=None),
        execution_options={"preserve_rowcount": True},
    )
    if changed.rowcount == 1:
        if row.status == RUNNING:
            _abandon(conn, row, now)
        _audit(
            conn,
            actor,
            row.alert_id,
            row.id,
            row.action,
            row.target,
            FAILED,
            row.reason,
            attempt=row.attempts,
            error=error,
        )


def _abandon(conn: Connection, row: Any, now: int) -> None:
    a = action_attempts.c
    conn.execute(
        action_attempts.update()
        .where(a.action_run_id == row.id, a.number == row.attempts, a.outcome == RUNNING)
        .values(
            outcome=ABANDONED,
            ended_at=now,
            error=f"lease expired: agent {row.claimed_by} stopped renewing it",
        )
    )


def _count(conn: Connection, run_id: str, outcome: str) -> int:
    a = action_attempts.c
    return int(
        conn.execute(
            select(func.count()).where(a.action_run_id == run_id, a.outcome == outcome)
        ).scalar()
        or 0
    )


# -- the lease ----------------------------------------------------------------------------------


def _held(run_id: str, agent: str, number: int) -> Any:
    r = action_runs.c
    return and_(r.id == run_id, r.status == RUNNING, r.claimed_by == agent, r.attempts == number)


def _extend(conn: Connection, run_id: str, agent: str, number: int, until: int) -> bool:
    """Extend ``agent``'s lease of attempt ``number`` to ``until``; False when it no longer
    holds it (a compare-and-set, ordered against another agent's claim)."""
    changed = conn.execute(
        action_runs.update().where(_held(run_id, agent, number)).values(lease_expires_at=until),
        execution_options={"preserve_rowcount": True},
    )
    return bool(changed.rowcount == 1)


@operation("POST /action-runs/leases", idempotent=True)
def renew(
    agent: str,
    held: dict[str, int],
    lease_ms: int,
    *,
    now: int | None = None,
    workspace: Workspace | None = None,
) -> tuple[str, ...]:
    """Extend to ``now + lease_ms`` the leases of the runs this agent holds (run id -> attempt);
    return the ids whose lease it lost (taken over by another worker after it expired)."""
    ws = workspace or current()
    _check_count(lease_ms, "lease_ms", 1)
    now = now_ms() if now is None else check_time_ms(now, "now")
    if not held:
        return ()
    with ws.store.write() as conn:
        return tuple(
            run_id
            for run_id, number in held.items()
            if not _extend(conn, run_id, agent, number, now + lease_ms)
        )


@operation("POST /action-runs/{run_id}/pipeline-runs")
def start_held_run(
    run_id: str,
    number: int,
    agent: str,
    start: RunStart,
    lease_ms: int,
    *,
    now: int | None = None,
    workspace: Workspace | None = None,
) -> RunStarted:
    """Start the pipeline run of an action's attempt, in the transaction that makes sure
    ``agent`` still holds the action run and extends its lease (Conflict if not): a retraining
    whose lease was taken over starts nothing.

    The lease check is a compare-and-set like a claim's, so that it and another agent's claim
    of the same run are ordered: either the claim sees the renewed lease and fails, or this
    sees the claim.
    """
    ws = workspace or current()
    _check_count(lease_ms, "lease_ms", 1)
    now = now_ms() if now is None else check_time_ms(now, "now")
    with ws.store.write() as conn:
        if not _extend(conn, run_id, agent, number, now + lease_ms):
            key = conn.execute(
                select(action_runs.c.idempotency_key).where(action_runs.c.id == run_id)
            ).scalar()
            if key is None:
                raise NotFound(f"action run {run_id!r} does not exist")
            raise Conflict(
                f"action run {key} is no longer held by agent {agent}: its lease expired "
                "and another agent took it over, so this attempt stops here"
            )
        return start_run_in(conn, ws, start)


# -- finish -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one attempt ended: a result, or an error that ``retry`` may fix."""

    result: dict[str, Any] | None = None
    error: str | None = None
    retry: bool = False


@operation("POST /action-runs/{run_id}/attempts/{number}/end")
def finish(
    run_id: str,
    number: int,
    agent: str,
    outcome: Outcome,
    *,
    actor: str | None = None,
    now: int | None = None,
    workspace: Workspace | None = None,
) -> ActionRun | None:
    """Record how attempt ``number`` ended and the run's next status (compare-and-set on the
    claim: retries and backoff follow the stored action); None when ``agent`` had lost the run
    to another after its lease expired."""
    ws = workspace or current()
    now = now_ms() if now is None else check_time_ms(now, "now")
    actor = actor or ws.user
    a = action_attempts.c
    with ws.store.write() as conn:
        row = conn.execute(
            select(action_runs, alerts.c.reason)
            .join(alerts, alerts.c.id == action_runs.c.alert_id)
            .where(action_runs.c.id == run_id)
        ).first()
        if row is None:
            raise NotFound(f"action run {run_id!r} does not exist")
        claimed = Claim(run_id, number, {"alert_id": row.alert_id}, row.spec, row.idempotency_key,
                        row.target)  # fmt: skip
        body = claimed.action.body
        attempt_row = and_(a.action_run_id == run_id, a.number == number)
        if outcome.error is None:
            status, error, next_at = SUCCEEDED, None, None
        else:
            failures = _count(conn, run_id, FAILED) + 1
            retries = getattr(body, "retries", 0)
            if outcome.retry and failures <= retries:
                status, error = PENDING, outcome.error
                next_at = now + int(getattr(body, "backoff", 0)) * 2 ** (failures - 1)
            else:
                status, next_at = FAILED, None
                error = _final_error(claimed, outcome, failures)
        changed = conn.execute(
            action_runs.update()
            .where(_held(run_id, agent, number))
            .values(
                status=status,
                result=outcome.result,
                error=error,
                next_attempt_at=next_at,
                claimed_by=None,
                lease_expires_at=None,
                ended_at=now if status in DONE else None,
            ),
            execution_options={"preserve_rowcount": True},
        )
        if changed.rowcount != 1:
            # Another worker took the run over; its record of this attempt (abandoned) stays,
            # with what this attempt did in the end.
            late = "succeeded" if outcome.error is None else f"failed: {outcome.error}"
            conn.execute(
                action_attempts.update()
                .where(attempt_row)
                .values(result=outcome.result, error=f"lease expired; it ended later and {late}")
            )
            return None
        conn.execute(
            action_attempts.update()
            .where(attempt_row)
            .values(
                outcome=SUCCEEDED if outcome.error is None else FAILED,
                ended_at=now,
                result=outcome.result,
                error=outcome.error,
            )
        )
        started = (outcome.result or {}).get("pipeline_run_id")
        if claimed.action.name == "trigger" and isinstance(started, str):
            add_edge(conn, ("alert", row.alert_id), ("pipeline_run", started), "triggered")
        _audit(
            conn,
            actor,
            row.alert_id,
            run_id,
            claimed.action.name,
            claimed.target,
            status,
            row.reason,
            attempt=number,
            agent=agent,
            error=error,
            next_attempt_at=next_at,
        )
        return _read(conn, action_runs.c.id == run_id)[0][1]


def _final_error(claimed: Claim, outcome: Outcome, failures: int) -> str:
    error = outcome.error or ""
    if claimed.action.name == "webhook":
        if not outcome.retry:
            return f"webhook {claimed.target} {error}"
        plural = "attempt" if failures == 1 else "attempts"
        return f"webhook {claimed.target} failed after {failures} {plural}: {error}"
    return error if failures == 1 else f"{error} (after {failures} attempts)"


def _audit(
    conn: Connection,
    actor: str,
    alert_id: str,
    run_id: str,
    action: str,
    target: str,
    status: str,
    reason: str,
    **extra: Any,
) -> None:
    after: dict[str, Any] = {
        "action_run_id": run_id,
        "target": target,
        "status": status,
        "reason": reason,
        "error": extra.pop("error", None),
    }
    after.update({k: v for k, v in extra.items() if v is not None})
    audit.record(conn, actor, f"action.{action}", "alert", alert_id, after=after)


# -- reading ------------------------------------------------------------------------------------


def read_for_alerts(conn: Connection, alert_ids: list[str]) -> dict[str, list[ActionRun]]:
    """Each alert's action runs, in ``on_alert`` order, inside the caller's transaction: two
    queries however many alerts."""
    found: dict[str, list[ActionRun]] = {alert_id: [] for alert_id in alert_ids}
    if alert_ids:
        for alert_id, run in _read(conn, action_runs.c.alert_id.in_(alert_ids)):
            found[alert_id].append(run)
    return found


def _read(conn: Connection, where: Any) -> list[tuple[str, ActionRun]]:
    """(alert id, run) for the action runs ``where`` selects, in ``on_alert`` order, each with
    its attempts: one query for the runs, one for every attempt."""
    r, a = action_runs.c, action_attempts.c
    rows = conn.execute(select(action_runs).where(where).order_by(r.position, r.id)).all()
    history: dict[str, list[Attempt]] = {x.id: [] for x in rows}
    if rows:
        attempts = select(action_attempts).where(a.action_run_id.in_(list(history)))
        for x in conn.execute(attempts.order_by(a.number)):
            history[x.action_run_id].append(
                Attempt(x.number, x.agent, x.outcome, x.started_at, x.ended_at, x.result, x.error)
            )
    return [
        (
            x.alert_id,
            ActionRun(
                id=x.id,
                action=x.action,
                target=x.target,
                status=x.status,
                attempts=x.attempts,
                result=x.result,
                error=x.error,
                started_at=x.started_at,
                ended_at=x.ended_at,
                position=x.position,
                idempotency_key=x.idempotency_key,
                next_attempt_at=x.next_attempt_at,
                claimed_by=x.claimed_by,
                lease_expires_at=x.lease_expires_at,
                created_at=x.created_at,
                history=history[x.id],
            ),
        )
        for x in rows
    ]
