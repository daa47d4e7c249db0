"""Alert actions as queued work: stored with their alert, claimed and run by agents.

A new alert stores one **action run** per ``on_alert`` action, ``pending``, in the alert's own
transaction; nothing runs inline. A worker (``cauce agent``, or ``cauce monitors run --wait``
in the foreground) **claims** a due run with a compare-and-set: an UPDATE guarded by the status,
attempt count and lease it read, so that of several agents exactly one wins. The claim makes it
``running`` under a **lease** (``CAUCE_ACTION_LEASE_S``) that the worker renews while the action
is alive; each claim starts an **attempt**, a record of its own (agent, start, end, outcome,
error, result).

An attempt ends ``succeeded`` (the run too), or ``failed``: a retryable failure (a webhook's
transport error or 5xx, a retraining run that did not succeed) makes the run ``pending`` again
with a next attempt time ``backoff * 2**(failures - 1)`` away, until ``retries`` are spent; then,
or on a failure that no retry fixes (a 4xx, a pipeline file that does not exist), the run is
``failed``. An agent that dies (SIGKILL) stops renewing: once its lease has expired another
claims the run again, marking the attempt ``abandoned``; after :data:`ABANDON_LIMIT` such
attempts the run fails instead. Execution is at least once: a webhook carries the run's
idempotency key (``<alert id>.<position>``) as an ``Idempotency-Key`` header so that a receiver
can drop a repeat. Every change of status is audited as ``action.<kind>`` on the alert.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import and_, func, or_, select

from cauce.errors import CauceError
from cauce.lineage import audit
from cauce.lineage.graph import add_edge
from cauce.monitoring.specs import Action, stored_action
from cauce.store import new_id, now_ms
from cauce.store.schema import action_attempts, action_runs, alerts, monitors
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("cauce.alerts")

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
ABANDONED = "abandoned"
DONE = (SUCCEEDED, FAILED)
# A run whose agent died this many times while running it fails, rather than kill a fourth.
ABANDON_LIMIT = 3
# How often an idle worker looks for due actions, in seconds.
POLL = 0.5


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


# -- the queue ----------------------------------------------------------------------------------


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


@dataclass
class Claim:
    """An action run this worker holds: the attempt it started and what it needs to run it."""

    run_id: str
    number: int
    alert: dict[str, Any]  # the webhook payload: alert_id, monitor, monitor_run_id, at, ...
    action: Action
    key: str
    target: str


def _due(now: int, alert_id: str | None) -> Any:
    r = action_runs.c
    due = or_(
        and_(r.status == PENDING, r.next_attempt_at <= now),
        and_(r.status == RUNNING, r.lease_expires_at < now),
    )
    return due if alert_id is None else and_(due, r.alert_id == alert_id)


def claim(
    ws: Workspace,
    agent: str,
    *,
    limit: int,
    lease_ms: int,
    actor: str,
    alert_id: str | None = None,
) -> list[Claim]:
    """Claim up to ``limit`` due runs (pending and due, or running with an expired lease), each
    with a compare-and-set: of several workers reading the same row, exactly one wins it."""
    if limit < 1:
        return []
    r = action_runs.c
    now = now_ms()
    with ws.store.read() as conn:  # most looks find nothing: no write lock for those
        if conn.execute(select(r.id).where(_due(now, alert_id)).limit(1)).first() is None:
            return []
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
        .where(_due(now, alert_id))
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
    return claimed


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
        action = Action.model_validate(stored_action(row.spec))
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
    return Claim(row.id, number, payload, action, row.idempotency_key, row.target)


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


def renew(ws: Workspace, agent: str, held: dict[str, int], lease_ms: int) -> list[str]:
    """Extend the leases of the runs this agent holds (run id -> attempt); return the ids
    whose lease it lost (taken over by another worker after it expired)."""
    if not held:
        return []
    r = action_runs.c
    lost = []
    with ws.store.write() as conn:
        until = now_ms() + lease_ms
        for run_id, number in held.items():
            changed = conn.execute(
                action_runs.update()
                .where(
                    r.id == run_id, r.status == RUNNING, r.claimed_by == agent, r.attempts == number
                )
                .values(lease_expires_at=until),
                execution_options={"preserve_rowcount": True},
            )
            if changed.rowcount != 1:
                lost.append(run_id)
    return lost


# -- running one attempt ------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one attempt ended: a result, or an error that ``retry`` may fix."""

    result: dict[str, Any] | None = None
    error: str | None = None
    retry: bool = False


def run_attempt(ws: Workspace, claimed: Claim) -> Outcome:
    """Run one attempt of a claimed action. Never raises."""
    action, body = claimed.action, claimed.action.body
    try:
        if action.name == "webhook":
            return _webhook(body, claimed.alert, claimed.key)
        if action.name == "trigger":
            return _trigger(ws, body, claimed.alert)
        getattr(log, body.level)("alert %s: %s", claimed.alert["alert_id"], claimed.alert["reason"])
        return Outcome({"logged": body.level})
    except CauceError as exc:  # a missing pipeline file, bad parameters: no retry fixes them
        return Outcome(error=str(exc))
    except Exception as exc:  # a retraining pipeline's own bug must not stop the worker
        log.exception("alert %s: action %s crashed", claimed.alert["alert_id"], action.name)
        return Outcome(error=f"{type(exc).__name__}: {exc}", retry=True)


def _webhook(body: Any, payload: dict[str, Any], key: str) -> Outcome:
    """POST the alert once: transport errors and 5xx may be retried, a 4xx may not."""
    import httpx

    headers = {**body.headers, "Idempotency-Key": key}
    try:
        response = httpx.post(body.url, json=payload, headers=headers, timeout=body.timeout / 1000)
    except httpx.HTTPError as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}", retry=True)
    result = {"status_code": response.status_code}
    if response.status_code >= 500:
        return Outcome(result, f"answered {response.status_code}", retry=True)
    if response.status_code >= 400:
        return Outcome(result, f"answered {response.status_code}")
    return Outcome(result)


def _trigger(ws: Workspace, body: Any, alert: dict[str, Any]) -> Outcome:
    """Run the pipeline; ``alert_id`` and ``alert_reason`` are passed when it takes them."""
    from cauce.pipelines.loading import load_pipeline

    pipeline = load_pipeline(body.pipeline, root=ws.settings.root)
    params = dict(body.params)
    for key, value in (("alert_id", alert["alert_id"]), ("alert_reason", alert["reason"])):
        if key in pipeline.signature.parameters and key not in params:
            params[key] = value
    run = pipeline.run(executor=body.executor, workspace=ws, **params)
    result = {"pipeline_run_id": run.id, "status": run.status}
    if run.status != "SUCCEEDED":
        return Outcome(result, f"pipeline run {run.id} ended {run.status}", retry=True)
    return Outcome(result)


def finish(
    ws: Workspace, agent: str, claimed: Claim, outcome: Outcome, actor: str
) -> ActionRun | None:
    """Record an attempt's outcome and the run's next status (compare-and-set on the claim);
    None when this worker had lost the run to another after its lease expired."""
    r, a = action_runs.c, action_attempts.c
    body = claimed.action.body
    now = now_ms()
    with ws.store.write() as conn:
        attempt_row = and_(a.action_run_id == claimed.run_id, a.number == claimed.number)
        held = and_(
            r.id == claimed.run_id,
            r.status == RUNNING,
            r.claimed_by == agent,
            r.attempts == claimed.number,
        )
        if outcome.error is None:
            status, error, next_at = SUCCEEDED, None, None
        else:
            failures = _count(conn, claimed.run_id, FAILED) + 1
            retries = getattr(body, "retries", 0)
            if outcome.retry and failures <= retries:
                status, error = PENDING, outcome.error
                next_at = now + int(getattr(body, "backoff", 0)) * 2 ** (failures - 1)
            else:
                status, next_at = FAILED, None
                error = _final_error(claimed, outcome, failures)
        changed = conn.execute(
            action_runs.update()
            .where(held)
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
            log.warning("action run %s: lease lost while it ran; not recorded", claimed.run_id)
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
        alert_id = claimed.alert["alert_id"]
        if claimed.action.name == "trigger" and outcome.result is not None:
            pipeline_run = ("pipeline_run", outcome.result["pipeline_run_id"])
            add_edge(conn, ("alert", alert_id), pipeline_run, "triggered")
        _audit(
            conn,
            actor,
            alert_id,
            claimed.run_id,
            claimed.action.name,
            claimed.target,
            status,
            claimed.alert["reason"],
            attempt=claimed.number,
            agent=agent,
            error=error,
            next_attempt_at=next_at,
        )
        return _read(conn, [claimed.run_id])[claimed.run_id]


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


# -- workers ------------------------------------------------------------------------------------


def agent_name() -> str:
    """Who claims: host, process and a per-worker suffix (two workers in one process differ)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{new_id()[:6]}"


class Worker:
    """Claims action runs and runs them, one attempt each; renews the leases it holds."""

    def __init__(self, ws: Workspace, *, actor: str = "agent", agent: str | None = None):
        self.ws = ws
        self.actor = actor
        self.agent = agent or agent_name()
        self.lease_ms = max(1, int(ws.settings.action_lease_s * 1000))
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def claim(self, limit: int, alert_id: str | None = None) -> list[Claim]:
        """Claim up to ``limit`` due runs (only ``alert_id``'s when given)."""
        claimed = claim(
            self.ws,
            self.agent,
            limit=limit,
            lease_ms=self.lease_ms,
            actor=self.actor,
            alert_id=alert_id,
        )
        with self._lock:
            self._held.update({c.run_id: c.number for c in claimed})
        return claimed

    def run(self, claimed: Claim) -> ActionRun | None:
        """Run one claimed attempt and record how it went."""
        try:
            outcome = run_attempt(self.ws, claimed)
            return finish(self.ws, self.agent, claimed, outcome, self.actor)
        except Exception:  # the store failed: the lease runs out and another worker retries
            log.exception("action run %s: its outcome could not be recorded", claimed.run_id)
            return None
        finally:
            with self._lock:
                self._held.pop(claimed.run_id, None)

    def renew(self) -> None:
        """Extend the lease of every run held; forget those lost to another worker."""
        with self._lock:
            held = dict(self._held)
        try:
            lost = renew(self.ws, self.agent, held, self.lease_ms)
        except CauceError as exc:  # the store is away for a moment: renew at the next turn
            log.warning("action leases not renewed: %s", exc)
            return
        for run_id in lost:
            log.warning("action run %s: lease lost to another worker", run_id)

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: a third of the lease, so two can fail before it expires."""
        return self.lease_ms / 3000


class ActionPool:
    """Runs due action runs on a pool of threads until stopped, renewing their leases.

    One thread claims (as many runs as there are free workers) and renews the leases; the
    pool's threads run the attempts, so that a long retraining holds one worker and nothing else.
    """

    def __init__(
        self,
        ws: Workspace,
        *,
        workers: int | None = None,
        actor: str = "agent",
        on_done: Callable[[ActionRun], None] | None = None,
    ) -> None:
        self.worker = Worker(ws, actor=actor)
        self.workers = workers or ws.settings.action_workers
        self.poll = min(POLL, self.worker.renew_every)
        self.on_done = on_done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cauce-actions", daemon=True)
        self._running: set[Future[ActionRun | None]] = set()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cauce-action")

    def start(self) -> None:
        """Start claiming in the background."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait for the actions running now to end (their leases still renewed)."""
        self._stop.set()
        self._thread.join(timeout)

    def drain(self) -> list[ActionRun]:
        """Run what is due now, until nothing is due or running; return the runs that ran."""
        done: list[ActionRun] = []
        report = self.on_done

        def collect(run: ActionRun) -> None:
            done.append(run)
            if report is not None:
                report(run)

        self.on_done = collect
        self._loop(until_idle=True)
        return done

    def _loop(self, until_idle: bool = False) -> None:
        renewed = time.monotonic()
        try:
            while True:
                if time.monotonic() - renewed >= self.worker.renew_every:
                    self.worker.renew()
                    renewed = time.monotonic()
                self._running = {f for f in self._running if not f.done()}
                stopping = self._stop.is_set()
                claimed = 0 if stopping else self._submit()
                if not self._running and (stopping or (until_idle and not claimed)):
                    return
                if self._running:  # wake when a worker frees up, to claim the next at once
                    wait(self._running, timeout=self.poll, return_when=FIRST_COMPLETED)
                else:
                    self._stop.wait(self.poll)
        finally:
            self._pool.shutdown(wait=True)

    def _submit(self) -> int:
        try:
            claimed = self.worker.claim(self.workers - len(self._running))
        except CauceError as exc:  # the store is away for a moment: look again later
            log.warning("actions not claimed: %s", exc)
            return 0
        for one in claimed:
            future = self._pool.submit(self.worker.run, one)
            future.add_done_callback(self._report)
            self._running.add(future)
        return len(claimed)

    def _report(self, future: Future[ActionRun | None]) -> None:
        run = future.result()
        if run is not None and self.on_done is not None:
            self.on_done(run)


def run_alert_actions(ws: Workspace, alert_id: str, *, actor: str) -> list[ActionRun]:
    """Run an alert's actions in the foreground, in order, until each has succeeded or failed
    (waiting out retries' backoff, and for any that another worker holds); return them."""
    worker = Worker(ws, actor=actor)
    stop = threading.Event()

    def keep_leases() -> None:
        while not stop.wait(worker.renew_every):
            worker.renew()

    renewer = threading.Thread(target=keep_leases, name="cauce-action-lease", daemon=True)
    renewer.start()
    try:
        while True:
            claimed = worker.claim(1, alert_id=alert_id)
            if claimed:
                worker.run(claimed[0])
                continue
            runs = actions_of(ws, [alert_id])[alert_id]
            open_ = [x for x in runs if x.status not in DONE]
            if not open_:
                return runs
            wake = [x.next_attempt_at or x.lease_expires_at or 0 for x in open_]
            time.sleep(min(POLL, max(0.01, (min(wake) - now_ms()) / 1000)))
    finally:
        stop.set()
        renewer.join()


# -- reading ------------------------------------------------------------------------------------


def actions_of(ws: Workspace, alert_ids: list[str]) -> dict[str, list[ActionRun]]:
    """Each alert's action runs, in ``on_alert`` order, with their attempts."""
    with ws.store.read() as conn:
        return read_for_alerts(conn, alert_ids)


def read_for_alerts(conn: Connection, alert_ids: list[str]) -> dict[str, list[ActionRun]]:
    """Each alert's action runs, in ``on_alert`` order, inside the caller's transaction."""
    r = action_runs.c
    found: dict[str, list[ActionRun]] = {alert_id: [] for alert_id in alert_ids}
    if not alert_ids:
        return found
    rows = conn.execute(
        select(r.id, r.alert_id).where(r.alert_id.in_(alert_ids)).order_by(r.position, r.id)
    ).all()
    runs = _read(conn, [row.id for row in rows])
    for row in rows:
        found[row.alert_id].append(runs[row.id])
    return found


def _read(conn: Connection, run_ids: list[str]) -> dict[str, ActionRun]:
    r, a = action_runs.c, action_attempts.c
    history: dict[str, list[Attempt]] = {run_id: [] for run_id in run_ids}
    for x in conn.execute(
        select(action_attempts).where(a.action_run_id.in_(run_ids)).order_by(a.number)
    ):
        history[x.action_run_id].append(
            Attempt(x.number, x.agent, x.outcome, x.started_at, x.ended_at, x.result, x.error)
        )
    return {
        x.id: ActionRun(
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
        )
        for x in conn.execute(select(action_runs).where(r.id.in_(run_ids)))
    }
