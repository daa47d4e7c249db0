"""``cauce agent``: the automation daemon. It fires due schedules and dataset triggers, runs due
monitors, runs the actions their alerts queued (retraining, webhooks), runs the rollout
controller (every second) for rollouts whose endpoint is served elsewhere and deletes the
traces older than the workspace keeps them (``CAUCE_TRACE_RETENTION``).

Each tick claims what is due in one operation (one write transaction, on the server for a
workspace on one), with a compare-and-set on the schedule's ``next_run_at`` (cron) or
``last_seen_version`` (dataset trigger), so that two agents on the same store never fire the
same slot twice. Then it runs the claimed pipelines one by one and records each firing's
outcome. A pipeline that fails is recorded as FAILED; the agent goes on. Monitors and indexes
are claimed the same way (``POST /monitors/claims``, ``POST /indexes/claims``).

Alert actions run beside the loop, on a pool of ``CAUCE_ACTION_WORKERS`` threads
(:class:`cauce.monitoring.actions.workers.ActionPool`): a long retraining holds one worker,
never the loop, and several agents share the queue through compare-and-set claims and leases.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.automation.schedules import ScheduleClaim, claim_schedules, end_firing
from cauce.errors import CauceError
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.monitoring.actions.queue import ActionRun

log = logging.getLogger(__name__)

# How many expired traces one transaction deletes: a long backlog goes a batch at a time.
RETENTION_BATCH = 5000
# (pipeline "FILE.py:NAME", params, executor, workspace) -> (pipeline run id, status)
PipelineRunner = Callable[[str, dict[str, Any], str, Workspace], tuple[str | None, str]]


@dataclass(frozen=True)
class Firing:
    """One firing of a schedule, after it ran."""

    schedule: str
    reason: str
    status: str
    pipeline_run_id: str | None
    error: str | None


def run_pipeline(
    target: str, params: dict[str, Any], executor: str, ws: Workspace
) -> tuple[str | None, str]:
    """Load ``FILE.py:NAME`` (relative paths from the workspace root) and run it."""
    from cauce.pipelines.loading import load_pipeline

    pipeline = load_pipeline(target, root=ws.settings.root)
    result = pipeline.run(executor=executor, workspace=ws, **params)
    return result.id, result.status


class Agent:
    """Fires the workspace's due schedules; :meth:`tick` once, or :meth:`run` until stopped."""

    def __init__(self, workspace: Workspace | None = None, runner: PipelineRunner = run_pipeline):
        self.ws = workspace or current()
        self.runner = runner

    def claim_due(self, now: int | None = None) -> tuple[ScheduleClaim, ...]:
        """Claim every due schedule (:func:`~cauce.automation.schedules.claim_schedules`)."""
        return claim_schedules(now=now, actor="agent", workspace=self.ws)

    def tick(self, now: int | None = None) -> list[Firing]:
        """Fire what is due now; return what each firing did."""
        done = []
        for claim in self.claim_due(now):
            spec = claim.spec
            run_id: str | None = None
            error: str | None = None
            try:
                run_id, status = self.runner(
                    spec["pipeline"],
                    spec.get("params") or {},
                    spec.get("executor", "local"),
                    self.ws,
                )
            except CauceError as exc:
                status, error = "FAILED", str(exc)
            except Exception as exc:  # a pipeline's own bug must not stop the agent
                log.exception("schedule %s: pipeline %s crashed", claim.schedule, spec["pipeline"])
                status, error = "FAILED", f"{type(exc).__name__}: {exc}"
            end_firing(
                claim.firing_id, status, pipeline_run_id=run_id, error=error, workspace=self.ws
            )
            done.append(Firing(claim.schedule, claim.reason, status, run_id, error))
        return done

    def run_monitors(self, now: int | None = None) -> list[Any]:
        """Run every monitor whose schedule is due; return the runs."""
        from cauce.monitoring.monitors import claim_due, run_monitor

        done = []
        for name in claim_due(self.ws, now):
            try:
                done.append(run_monitor(name, workspace=self.ws, now=now, actor="agent"))
            except Exception:  # one broken monitor must not stop the agent
                log.exception("monitor %s crashed", name)
        return done

    def run_indexes(self, now: int | None = None) -> list[Any]:
        """Refresh every index that is due (never built, schedule, max_age, a new version of
        its dataset); return what each refresh did."""
        from cauce.genai.indexes.registry import claim_due, refresh

        done = []
        for name in claim_due(self.ws, now):
            try:
                done.append(refresh(name, actor="agent", workspace=self.ws))
            except Exception:  # one broken index must not stop the agent
                log.exception("index %s: refresh failed", name)
        return done

    def expire_traces(self, now: int | None = None) -> int:
        """Delete the traces started longer ago than the workspace keeps them
        (``CAUCE_TRACE_RETENTION``), ``RETENTION_BATCH`` a transaction; how many went."""
        from cauce.genai.tracing import delete_traces
        from cauce.store import now_ms

        keep = self.ws.settings.trace_retention_ms
        if keep is None:
            return 0
        cutoff = (now_ms() if now is None else now) - keep
        total = 0
        while True:
            deleted = delete_traces(before_ms=cutoff, max_traces=RETENTION_BATCH, workspace=self.ws)
            total += deleted
            if deleted < RETENTION_BATCH:
                if total:
                    log.info("deleted %d traces older than the retention window", total)
                return total

    def run_actions(self, on_done: Callable[[ActionRun], None] | None = None) -> list[ActionRun]:
        """Run the alert actions due now (on the worker pool) until none is; return them."""
        from cauce.monitoring.actions.workers import ActionPool

        return ActionPool(self.ws, actor="agent", on_done=on_done).drain()

    def run(
        self,
        interval: float = 10.0,
        stop: threading.Event | None = None,
        on_firing: Callable[[Firing], None] | None = None,
        on_action: Callable[[ActionRun], None] | None = None,
    ) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; run alert actions and analyse
        rollouts meanwhile. On stop, the actions running finish first."""
        from cauce.monitoring.actions.workers import ActionPool
        from cauce.serving.rollouts import Controller

        stop = stop or threading.Event()
        controller = Controller(self.ws)
        actions = ActionPool(self.ws, actor="agent", on_done=on_action)
        controller.start()
        actions.start()
        try:
            while not stop.is_set():
                for firing in self.tick():
                    if on_firing is not None:
                        on_firing(firing)
                self.run_monitors()
                self.run_indexes()
                self.expire_traces()
                stop.wait(interval)
        finally:
            actions.stop()
            controller.stop()
