"""The Ray executor: each step is a Ray task, on a local Ray or a cluster.

``ray.init()`` starts a local Ray on first use; with ``CAUCE_RAY_ADDRESS`` set (``auto``, or
``ray://host:10001``) the executor joins that cluster instead. Every worker needs Cauce
installed and must reach the workspace's metadata store and artifact store: on a cluster, point
``CAUCE_DB_URL`` at PostgreSQL and ``CAUCE_ARTIFACTS`` at object storage, or work through a Cauce
server (the workspace's ``server_url`` travels with each task). Tasks travel as
cloudpickle bytes (the step function and small constants); inputs and outputs travel as sha256
references to the artifact store, as with the process executor. Ray stays up for the life of the
process (starting it costs seconds), and is shut down at exit when Cauce started it.
"""

from __future__ import annotations

import atexit
import os
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from cauce.errors import BackendError
from cauce.pipelines.executors.base import (
    Executor,
    StepResult,
    StepTask,
    run_in_worker,
    send_pickled,
)

if TYPE_CHECKING:
    from cauce.config import Settings

_remote: Any = None


def _ray_remote(settings: Settings, max_workers: int | None) -> Any:
    """The remote :func:`run_in_worker`, with Ray started (or joined) once per process."""
    global _remote
    try:
        import ray
    except ImportError:
        raise BackendError("the ray executor needs Ray", hint="pip install 'cauce[ray]'") from None
    if not ray.is_initialized():
        address = settings.ray_address or None
        options: dict[str, Any] = {"address": address, "log_to_driver": False}
        if address is None:
            options.update(include_dashboard=False, num_cpus=max_workers or os.cpu_count() or 1)
        try:
            ray.init(**options)
        except Exception as exc:  # Ray raises several kinds: none of them is a user mistake
            raise BackendError(f"cannot start or join Ray at {address or 'local'}: {exc}") from exc
        atexit.register(ray.shutdown)
    if _remote is None:
        # Retries are Cauce's (step retries=), not Ray's.
        _remote = ray.remote(max_retries=0)(run_in_worker)
    return _remote


class RayExecutor(Executor):
    """Runs each step as a Ray task."""

    name = "ray"

    def submit(self, task: StepTask) -> Future[StepResult]:
        """Send the task to Ray; a task that cannot be sent or run completes as FAILED."""

        def send(payload: bytes) -> Future[StepResult]:
            remote = _ray_remote(self.workspace.settings, self.max_workers)
            future: Future[StepResult] = remote.remote(self.workspace.settings, payload).future()
            return future

        return send_pickled(task, send, "Ray", "Ray task failed")
