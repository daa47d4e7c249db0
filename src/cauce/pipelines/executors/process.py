"""The process-pool executor: independent branches run in parallel worker processes.

Workers are started with ``spawn`` (no inherited database connections or threads) and open
the runner's workspace from its settings (on a server's workspace: the same server), current
while a step runs. A task goes to a worker as cloudpickle
bytes holding the step function and its small constant arguments; inputs and outputs travel as
sha256 references to the artifact store. Each worker runs its step in its main thread, so a
step's ``timeout`` is enforced there by SIGALRM; a worker that dies fails its step.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TYPE_CHECKING

from cauce.pipelines.executors.base import (
    Executor,
    StepResult,
    StepTask,
    run_in_worker,
    send_pickled,
)

if TYPE_CHECKING:
    from cauce.workspace import Workspace


class ProcessExecutor(Executor):
    """Runs steps in a pool of spawned worker processes."""

    name = "process"

    def __init__(self, workspace: Workspace, *, max_workers: int | None = None) -> None:
        super().__init__(workspace, max_workers=max_workers)
        self._pool: ProcessPoolExecutor | None = None

    @property
    def pool(self) -> ProcessPoolExecutor:
        """The worker pool, started on the first task."""
        if self._pool is None:
            workers = self.max_workers or min(os.cpu_count() or 1, 8)
            self._pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Send the task to a worker; a task that cannot be sent or run completes as FAILED."""
        return send_pickled(
            task,
            lambda payload: self.pool.submit(run_in_worker, self.workspace.settings, payload),
            "a worker",
            "worker failed",
        )

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
