"""Alert actions as queued work: stored with their alert, claimed and run by agents.

A new alert stores one **action run** per ``on_alert`` action, ``pending``, in the monitor run's
own transaction; nothing runs inline. A worker (``cauce agent``, or ``cauce monitors run
--wait`` in the foreground) **claims** a due run with a compare-and-set: an UPDATE guarded by
the status, attempt count and lease it read, so that of several agents exactly one wins. The
claim makes it ``running`` under a **lease** (``CAUCE_ACTION_LEASE_S``) that the worker renews
while the action is alive; each claim starts an **attempt**, a record of its own (agent, start,
end, outcome, error, result).

An attempt ends ``succeeded`` (the run too), or ``failed``: a retryable failure (a webhook's
transport error or 5xx, a retraining run that did not succeed, a store that failed) makes the
run ``pending`` again with a next attempt time ``backoff * 2**(failures - 1)`` away, until
``retries`` are spent; then, or on a failure that no retry fixes (a 4xx, a pipeline file that
does not exist), the run is ``failed``. An agent that dies (SIGKILL) stops renewing: once its
lease has expired another claims the run again, marking the attempt ``abandoned``; after
:data:`~cauce.monitoring.actions.queue.ABANDON_LIMIT` such attempts the run fails instead.

Execution is at least once, with the run's idempotency key (``<alert id>.<position>``) for the
repeats: a webhook sends it as an ``Idempotency-Key`` header so that a receiver can drop a
repeat; a trigger tags its pipeline run with it, so that a new attempt returns the run an
earlier one finished rather than start another, and resumes (through the step cache) one whose
agent died. Every change of status is audited as ``action.<kind>`` on the alert.

Modules: :mod:`~cauce.monitoring.actions.queue` (the stored runs and their transitions: enqueue,
claim, renew, finish, read), :mod:`~cauce.monitoring.actions.runners` (one attempt of each
kind of action), :mod:`~cauce.monitoring.actions.workers` (the worker, the agent's pool, the
foreground ``--wait``).
"""
