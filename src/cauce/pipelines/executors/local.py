"""The in-process executor: steps run one after another in the calling thread."""

from __future__ import annotations

from concurrent.futures import Future

from cauce.pipelines.executors.base import Executor, StepResult, StepTask, execute


class LocalExecutor(Executor):
    """Runs each step at once, in this process (timeouts by SIGALRM in the main thread)."""

    name = "local"

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Run the task now; the returned future is already done."""
        future: Future[StepResult] = Future()
        future.set_result(execute(task, self.workspace.artifacts))
        return future
