"""Who runs queued actions: a worker (claims, runs, renews), the agent's pool of them, and the
foreground run of one alert's actions (``cauce monitors run --wait``).

Each step is an operation of :mod:`~cauce.monitoring.actions.queue`, so that workers run through
a server too. A worker reads time from its ``clock`` (milliseconds): with the default, the
store's side's clock decides claims, leases and backoffs (one clock for every agent); a test's
clock moves them instead of waiting for a lease to expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

from cauce.errors import CauceError
from cauce.monitoring.actions.queue import (
    DONE,
    ActionRun,
    Claim,
    claim,
    finish,
    renew,
    start_held_run,
)
from cauce.monitoring.actions.runners import run_attempt
from cauce.monitoring.alerts import get_alert
from cauce.pipelines.records import RunStart, RunStarted
from cauce.store import new_id, now_ms
from cauce.workspace import Workspace

log = logging.getLogger("cauce.alerts")

# How often an idle worker looks for due actions, in seconds.
POLL = 0.5
Clock = Callable[[], int]


def agent_name() -> str:
    """Who claims: host, process and a per-worker suffix (two workers in one process differ)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{new_id()[:6]}"


class Worker:
    """Claims action runs and runs them, one attempt each; renews the leases it holds."""

    def __init__(
        self,
        ws: Workspace,
        *,
        actor: str = "agent",
        agent: str | None = None,
        clock: Clock = now_ms,
    ):
        self.ws = ws
        self.actor = actor
        self.agent = agent or agent_name()
        self.clock = clock
        self.lease_ms = max(1, int(ws.settings.action_lease_s * 1000))
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def now(self) -> int | None:
        """The time to send: None (the store's side's clock) unless a test gave a clock."""
        return None if self.clock is now_ms else self.clock()

    def claim(self, limit: int, run_id: str | None = None) -> tuple[Claim, ...]:
        """Claim up to ``limit`` due runs (only ``run_id`` when given)."""
        claimed = claim(
            self.agent,
            limit=limit,
            lease_ms=self.lease_ms,
            actor=self.actor,
            now=self.now(),
            run_id=run_id,
            workspace=self.ws,
        )
        with self._lock:
            self._held.update({c.run_id: c.number for c in claimed})
        return claimed

    def run(self, claimed: Claim) -> ActionRun | None:
        """Run one claimed attempt and record how it went; None when the run was lost to
        another worker meanwhile, or the outcome could not be recorded."""

        def fence(start: RunStart) -> RunStarted:
            return start_held_run(
                claimed.run_id, claimed.number, self.agent, start, self.lease_ms,
                now=self.now(), workspace=self.ws,
            )  # fmt: skip

        try:
            outcome = run_attempt(self.ws, claimed, fence)
            done = finish(
                claimed.run_id, claimed.number, self.agent, outcome,
                actor=self.actor, now=self.now(), workspace=self.ws,
            )  # fmt: skip
            if done is None:
                log.warning("action run %s: lease lost while it ran; not recorded", claimed.key)
            return done
        except Exception:  # the store failed: the lease runs out and another worker retries
            log.exception("action run %s: its outcome could not be recorded", claimed.key)
            return None
        finally:
            with self._lock:
                self._held.pop(claimed.run_id, None)

    def renew(self) -> None:
        """Extend the lease of every run held; forget (once warned) those lost to another
        worker."""
        with self._lock:
            held = dict(self._held)
        try:
            lost = renew(self.agent, held, self.lease_ms, now=self.now(), workspace=self.ws)
        except CauceError as exc:  # the store is away for a moment: renew at the next turn
            log.warning("action leases not renewed: %s", exc)
            return
        with self._lock:
            for run_id in lost:
                if self._held.get(run_id) == held[run_id]:
                    del self._held[run_id]
        for run_id in lost:
            log.warning("action run %s: lease lost to another worker", run_id)

    @property
    def renew_every(self) -> int:
        """Milliseconds between renewals: a third of the lease, so two can fail before it
        expires."""
        return max(1, self.lease_ms // 3)

    @contextmanager
    def renewing(self) -> Iterator[None]:
        """Renew the leases held on a thread of their own while inside."""
        stop = threading.Event()

        def keep() -> None:
            renewed = self.clock()
            while not stop.wait(min(POLL, self.renew_every / 1000)):
                if self.clock() - renewed >= self.renew_every:
                    self.renew()
                    renewed = self.clock()

        renewer = threading.Thread(target=keep, name="cauce-action-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()


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
        clock: Clock = now_ms,
    ) -> None:
        self.worker = Worker(ws, actor=actor, clock=clock)
        self.workers = workers or ws.settings.action_workers
        self.poll = min(POLL, self.worker.renew_every / 1000)
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
        clock = self.worker.clock
        renewed = clock()
        try:
            while True:
                if clock() - renewed >= self.worker.renew_every:
                    self.worker.renew()
                    renewed = clock()
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


def run_alert_actions(
    ws: Workspace, alert_id: str, *, actor: str, clock: Clock = now_ms
) -> list[ActionRun]:
    """Run an alert's actions in the foreground, in ``on_alert`` order: each until it has
    succeeded or failed (waiting out its retries' backoff, or for another worker holding it)
    before the next starts; return them."""
    worker = Worker(ws, actor=actor, clock=clock)
    with worker.renewing():
        for run in get_alert(alert_id, workspace=ws).actions:
            while True:
                claimed = worker.claim(1, run_id=run.id)
                if claimed:
                    worker.run(claimed[0])
                actions = get_alert(alert_id, workspace=ws).actions
                [current] = [x for x in actions if x.id == run.id]
                if current.status in DONE:
                    break
                if not claimed:  # a retry's backoff, or another worker's lease
                    wake = current.next_attempt_at or current.lease_expires_at or 0
                    time.sleep(min(POLL, max(0.01, (wake - clock()) / 1000)))
    return get_alert(alert_id, workspace=ws).actions
