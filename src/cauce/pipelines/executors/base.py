"""The executor interface and the body of one step execution, shared by every executor.

An executor receives a :class:`StepTask` (the step, its constant arguments, its inputs as
artifact references) and returns a future of a :class:`StepResult` (status, attempts, error,
the stored output and its stats). Inputs and outputs travel as sha256 references: each side
reads and writes the artifact store itself, so big objects never go through a pipe.

Timeouts are signal-based: in the main thread of the process that runs the step, ``SIGALRM``
(``setitimer``) raises :class:`StepTimeout` inside the step when its time is up; it interrupts
Python code and blocking calls such as ``time.sleep``, but a long call into C code that does not
return to the interpreter is interrupted only when it returns. Off the main thread (where signals
cannot be used) the step runs in a helper thread that is abandoned, still running, at the timeout.
"""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.errors import CauceError

if TYPE_CHECKING:
    from cauce.artifacts import ArtifactStore
    from cauce.config import Settings
    from cauce.pipelines.decorators import Step
    from cauce.workspace import Workspace

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
SKIPPED = "SKIPPED"
RUNNING = "RUNNING"


class StepTimeout(Exception):
    """A step attempt ran past its timeout."""


@dataclass
class StepTask:
    """One step to execute: constants by argument, inputs as stored-output references."""

    node: str
    step: Step
    constants: dict[str, Any]
    # argument -> {"sha256", "kind", ...}: upstream outputs and non-JSON constants
    inputs: dict[str, dict[str, Any]]


@dataclass
class StepResult:
    """What an execution of a step produced."""

    node: str
    status: str
    attempts: int
    start_time: int
    end_time: int
    duration_ms: int
    error: str | None = None
    output: dict[str, Any] | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    # Ids of the dataset versions the step loaded with cauce.data.load (lineage inputs).
    datasets: list[str] = field(default_factory=list)
    # Ids of the tracked runs the step started (lineage outputs).
    runs: list[str] = field(default_factory=list)


class Executor(ABC):
    """Runs step tasks and hands back futures of their results."""

    name: str = ""

    def __init__(self, workspace: Workspace, *, max_workers: int | None = None) -> None:
        self.workspace = workspace
        self.max_workers = max_workers

    @abstractmethod
    def submit(self, task: StepTask) -> Future[StepResult]:
        """Start (or run) a task; its future completes with the result, never an exception."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers and connections."""


def execute(task: StepTask, artifacts: ArtifactStore) -> StepResult:
    """Load inputs, run the step with retries and timeout, store its output: the whole task."""
    from cauce.data.assets import recording_reads
    from cauce.pipelines import materializers
    from cauce.pipelines.graph import call_arguments
    from cauce.store import now_ms
    from cauce.tracking.runs import recording_runs

    step = task.step
    start = now_ms()
    began = time.perf_counter()

    def finish(status: str, attempts: int, **extra: Any) -> StepResult:
        elapsed = int((time.perf_counter() - began) * 1000)
        return StepResult(task.node, status, attempts, start, now_ms(), elapsed, **extra)

    try:
        arguments = dict(task.constants)
        for arg, ref in task.inputs.items():
            arguments[arg] = materializers.load(artifacts, ref)
    except CauceError as exc:
        return finish(FAILED, 0, error=f"cannot load the inputs: {exc}")
    args, kwargs = call_arguments(step, arguments)

    attempts = 0
    while True:
        attempts += 1
        try:
            with recording_reads() as datasets, recording_runs() as started:
                value = call_with_timeout(step.fn, args, kwargs, step.timeout, step.name)
            break
        except Exception as exc:  # a step may raise anything: record it, retry or fail
            if attempts > step.retries:
                return finish(FAILED, attempts, error=f"{type(exc).__name__}: {exc}")
            time.sleep(step.retry_backoff * 2 ** (attempts - 1))
    try:
        output, _ = materializers.store(artifacts, value, step.name)
    except CauceError as exc:
        return finish(FAILED, attempts, error=str(exc))
    stats = materializers.stats_of(value)
    result = finish(
        SUCCEEDED, attempts, output=output, stats=stats, datasets=datasets, runs=started
    )
    result.stats["duration_ms"] = result.duration_ms
    return result


# One workspace per worker process and workspace settings, opened on the worker's first task.
_worker_workspaces: dict[str, Workspace] = {}


def run_in_worker(settings: Settings, payload: bytes) -> StepResult:
    """Run a cloudpickled :class:`StepTask` in a worker process (process pool, Ray task).

    The runner's workspace is current while the step runs, so that what the step does through
    Cauce (datasets it loads, runs it starts) reaches the same store, or the same server.
    """
    import cloudpickle

    from cauce.workspace import Workspace, using

    key = f"{settings.root}|{settings.artifacts}|{settings.server_url}"
    if key not in _worker_workspaces:
        _worker_workspaces[key] = Workspace(settings)
    ws = _worker_workspaces[key]
    task: StepTask = cloudpickle.loads(payload)
    with using(ws):
        return execute(task, ws.artifacts)


def send_pickled(
    task: StepTask, send: Callable[[bytes], Future[StepResult]], where: str, failure: str
) -> Future[StepResult]:
    """Cloudpickle ``task`` and ``send`` it (to a process pool, to Ray); a task that cannot be
    sent, or whose worker dies, completes as FAILED (``failure: …``) instead of raising."""
    import cloudpickle

    outer: Future[StepResult] = Future()
    try:
        payload = cloudpickle.dumps(task)
    except Exception as exc:  # an argument or closure cloudpickle cannot serialize
        outer.set_result(failed_result(task, f"cannot send the step to {where}: {exc}"))
        return outer
    inner = send(payload)

    def relay(done: Future[StepResult]) -> None:
        try:
            outer.set_result(done.result())
        except Exception as exc:  # a worker that died or a result that could not return
            outer.set_result(failed_result(task, f"{failure}: {type(exc).__name__}: {exc}"))

    inner.add_done_callback(relay)
    return outer


def failed_result(task: StepTask, error: str) -> StepResult:
    """A FAILED result for a task that could not be sent or run."""
    from cauce.store import now_ms

    now = now_ms()
    return StepResult(task.node, FAILED, 0, now, now, 0, error=error)


def call_with_timeout(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
    name: str,
) -> Any:
    """``fn(*args, **kwargs)``, raising StepTimeout after ``timeout`` seconds (see the module)."""
    if timeout is None:
        return fn(*args, **kwargs)
    message = f"step {name!r} timed out after {timeout:g} s"
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def on_alarm(_signum: int, _frame: Any) -> None:
            raise StepTimeout(message)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        began = time.monotonic()
        # A timer set before (pytest-timeout's, the caller's own) is put back afterwards, less
        # the time spent, so that it still fires.
        delay, interval = signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn(*args, **kwargs)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if delay > 0:
                left = max(delay - (time.monotonic() - began), 0.001)
                signal.setitimer(signal.ITIMER_REAL, left, interval)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    # In the step's context, so that what it records (datasets read, runs started) reaches the
    # caller.
    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(target,), name=f"cauce-step-{name}", daemon=True
    )
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise StepTimeout(message)
    if "error" in box:
        raise box["error"]
    return box["value"]
