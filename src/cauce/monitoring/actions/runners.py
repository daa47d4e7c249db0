"""One attempt at an action: what ``webhook``, ``trigger`` and ``log`` do, and how each fails.

An attempt never raises: it returns an :class:`~cauce.monitoring.actions.queue.Outcome`, whose
``retry`` says whether trying again may help (a webhook's transport error or 5xx, a pipeline
run that did not succeed, a store that failed, a crash in the pipeline's own code) or not (a
4xx, a pipeline file that does not exist, parameters it does not take).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cauce.errors import BackendError, CauceError
from cauce.monitoring.actions.queue import Claim, Outcome
from cauce.workspace import Workspace

if TYPE_CHECKING:
    from cauce.pipelines.records import RunStart, RunStarted

log = logging.getLogger("cauce.alerts")

# Starts the side effect that must not happen twice (a pipeline run) in the transaction that
# checks that the worker still holds the action run: Conflict when it does not.
Fence = Callable[["RunStart"], "RunStarted"]


def run_attempt(ws: Workspace, claimed: Claim, fence: Fence) -> Outcome:
    """Run one attempt of a claimed action. Never raises."""
    action, body = claimed.action, claimed.action.body
    try:
        if action.name == "webhook":
            return _webhook(body, claimed.alert, claimed.key)
        if action.name == "trigger":
            return _trigger(ws, body, claimed, fence)
        getattr(log, body.level)("alert %s: %s", claimed.alert["alert_id"], claimed.alert["reason"])
        return Outcome({"logged": body.level})
    except CauceError as exc:
        # A store that failed may answer next time; a missing pipeline file, bad parameters or
        # a lost lease are not fixed by trying again.
        return Outcome(error=str(exc), retry=isinstance(exc, BackendError))
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


def _trigger(ws: Workspace, body: Any, claimed: Claim, fence: Fence) -> Outcome:
    """Run the pipeline, tagged with the action's idempotency key; ``alert_id`` and
    ``alert_reason`` are passed when it takes them.

    The key makes a retraining start at most once per alert: a run an earlier attempt finished
    is recorded as this attempt's result and nothing runs; one whose agent died is marked
    failed (abandoned) and resumed by a new run, the steps it finished reused from the cache.
    The fence starts the run in the transaction that checks the lease, so that an agent whose
    lease was taken over starts nothing.
    """
    from cauce.pipelines.loading import load_pipeline
    from cauce.pipelines.runner import run_pipeline

    pipeline = load_pipeline(body.pipeline, root=ws.settings.root)
    params = dict(body.params)
    alert = claimed.alert
    for key, value in (("alert_id", alert["alert_id"]), ("alert_reason", alert["reason"])):
        if key in pipeline.signature.parameters and key not in params:
            params[key] = value
    run = run_pipeline(
        pipeline, params, executor=body.executor, workspace=ws, key=claimed.key, start_with=fence
    )
    result: dict[str, Any] = {"pipeline_run_id": run.id, "status": run.status}
    if run.reused:
        result["reused"] = True  # an earlier attempt's run had succeeded: nothing ran now
    if run.resumed:
        result["resumed"] = run.resumed
    if run.status != "SUCCEEDED":
        return Outcome(result, f"pipeline run {run.id} ended {run.status}", retry=True)
    return Outcome(result)
