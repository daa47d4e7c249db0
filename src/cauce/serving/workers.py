"""Deployment workers: processes that load one model version and score requests.

``cauce deployments serve ENDPOINT NAME`` binds one listening socket and starts the deployment's
``workers`` processes on it (the kernel hands each new connection to one of them). A worker that
dies is started again; until it is back, connections wait in the socket's backlog, so a caller
sees a slower answer, not a refused connection. The same command runs a deployment on a laptop
(started by ``cauce endpoints serve``) and in a Kubernetes pod.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.errors import BadRequest, CauceError, InvalidInput, ModelError, NotFound
from cauce.serving.codec import HEADER_LENGTH, OCTET_STREAM
from cauce.serving.http import (
    Receive,
    Scope,
    Send,
    header,
    lifespan,
    openapi,
    read_body,
    respond,
    respond_error,
    respond_json,
    settle_gc,
)
from cauce.serving.invocations import encode_invocations, parse_invocations
from cauce.serving.v2 import (
    EXTENSIONS,
    encode_v2,
    header_length,
    parse_v2_infer,
    v2_metadata,
)

log = logging.getLogger("cauce.worker")
_MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(/ready|/infer)?$")
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


@dataclass
class WorkerApp:
    """The scoring API of one deployment (ASGI)."""

    endpoint: str
    deployment: str
    model_name: str
    model_version: int
    signature: dict[str, Any] | None
    predict: Any  # callable: validated input -> predictions
    platform: str
    max_request_bytes: int
    batcher: Any = None  # a Batcher, when the deployment batches

    def __post_init__(self) -> None:
        # The model runs on its own thread, so that the event loop keeps reading requests and
        # answering health checks while it scores (one thread: one model call at a time).
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="cauce-model")
        self._inputs = (self.signature or {}).get("inputs")
        self._headers = [
            (b"cauce-deployment", self.deployment.encode()),
            (b"cauce-model-version", f"{self.model_name}/{self.model_version}".encode()),
        ]
        self._openapi = json.dumps(openapi(f"Cauce endpoint {self.endpoint}")).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._route(scope, receive, send)
        except CauceError as exc:
            await respond_error(send, exc, scope["path"], headers=self._headers)
        except Exception as exc:  # a bug, not the caller's fault: logged, answered in JSON
            log.exception(
                "%s/%s: internal error on %s", self.endpoint, self.deployment, scope["path"]
            )
            error = CauceError(f"internal error: {type(exc).__name__}", code="internal-error")
            await respond_error(send, error, scope["path"], headers=self._headers)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if method == "POST" and path == "/invocations":
            await self._invocations(scope, receive, send)
            return
        match = _MODEL_PATH.match(path)
        if match is not None:
            self._check_model(match.group(1))
            action = match.group(2)
            if action == "/infer" and method == "POST":
                await self._infer(scope, receive, send, match.group(1))
            elif action is None and method == "GET":
                await respond_json(send, 200, self.metadata(), headers=self._headers)
            elif action == "/ready" and method == "GET":
                await respond_json(send, 200, {"name": match.group(1), "ready": True})
            else:
                raise _method_not_allowed(method, path)
            return
        if method != "GET":
            raise _method_not_allowed(method, path) if path in _GET_PATHS else _not_found(path)
        if path in ("/ping", "/health", "/v2/health/live"):
            await respond_json(send, 200, {"live": True})
        elif path == "/v2/health/ready":
            await respond_json(send, 200, {"ready": True})
        elif path == "/v2":
            from cauce import __version__

            await respond_json(
                send,
                200,
                {"name": "cauce", "version": __version__, "extensions": list(EXTENSIONS)},
            )
        elif path == "/openapi.json":
            await respond(send, 200, self._openapi)
        else:
            raise _not_found(path)

    def _check_model(self, name: str) -> None:
        if name not in (self.endpoint, self.model_name):
            raise NotFound(
                f"no model {name!r} here; this is endpoint {self.endpoint!r}",
                details={"field": "name"},
            )

    def metadata(self) -> dict[str, Any]:
        """Open Inference v2 model metadata."""
        return v2_metadata(self.endpoint, [str(self.model_version)], self.signature, self.platform)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(scope, receive, self.max_request_bytes)
        content_type = header(scope, b"content-type")
        item = parse_invocations(
            body, content_type.decode("latin-1") if content_type else None, self._inputs
        )
        predictions, batch = await self._score(item)
        await respond(send, 200, encode_invocations(predictions), headers=self._reply(batch))

    async def _infer(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        body = await read_body(scope, receive, self.max_request_bytes)
        length = header_length(header(scope, _HEADER_LENGTH))
        item = parse_v2_infer(body, self._inputs, length)
        predictions, batch = await self._score(item)
        answer = encode_v2(
            predictions,
            model_name=name,
            model_version=str(self.model_version),
            request_id=item.request_id,
            outputs=item.outputs,
            binary=item.binary,
        )
        if answer.header_length is None:
            await respond(send, 200, answer.body, headers=self._reply(batch))
            return
        headers = [*self._reply(batch), (_HEADER_LENGTH, str(answer.header_length).encode())]
        await respond(send, 200, answer.body, content_type=_OCTET_STREAM, headers=headers)

    async def _score(self, item: Any) -> tuple[Any, int]:
        try:
            if self.batcher is not None:
                result: tuple[Any, int] = await self.batcher.score(item)
                return result
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._model_thread, self.predict, item.data), 1
        except CauceError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            # The input matched the signature, yet the model refused it (an unseen category,
            # say): the caller's input is the cause, so it is a 422, not a server error.
            raise InvalidInput(
                f"the model could not score this input: {_first_line(exc)}",
                details={"field": "input"},
            ) from None
        except Exception as exc:
            raise ModelError(
                f"the model failed: {type(exc).__name__}: {_first_line(exc)}"
            ) from None

    def _reply(self, batch: int) -> list[tuple[bytes, bytes]]:
        return [*self._headers, (b"cauce-batch-size", str(batch).encode())]


_HEADER_LENGTH = HEADER_LENGTH.encode()
_OCTET_STREAM = OCTET_STREAM.encode()
_GET_PATHS = {"/ping", "/health", "/v2/health/live", "/v2/health/ready", "/v2", "/openapi.json"}


def _not_found(path: str) -> NotFound:
    return NotFound(f"no such path: {path}", details={"field": "path"})


def _method_not_allowed(method: str, path: str) -> CauceError:
    return BadRequest(
        f"{method} is not allowed on {path}", code="method-not-allowed", details={"field": "method"}
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def build_app(endpoint: str, deployment: str, *, workspace: Any = None) -> Any:
    """Load what a deployment serves and wrap it in its API: the scoring API for a model,
    OpenAI's for an LLM, a flow, a prompt or a connection."""
    from cauce.registry.models import load, resolve
    from cauce.serving.batching import Batcher
    from cauce.serving.endpoints import get_endpoint
    from cauce.serving.genai import build_genai_app
    from cauce.workspace import current

    ws = workspace or current()
    target = get_endpoint(endpoint, workspace=ws)
    found = target.deployment(deployment)
    if found.genai or resolve(found.target, workspace=ws).flavor == "gguf":
        return build_genai_app(found, target.max_request_bytes, ws)
    model = load(found.target, workspace=ws)

    def predict(data: Any) -> Any:
        return model.flavor.predict(model.native, data)

    _warm_up(model, predict)
    batching = found.batching
    return WorkerApp(
        endpoint=endpoint,
        deployment=deployment,
        model_name=str(found.model_name),
        model_version=int(found.model_version or 0),
        signature=model.signature,
        predict=predict,
        platform=f"cauce_{model.flavor.name}",
        max_request_bytes=target.max_request_bytes,
        batcher=Batcher(predict, **batching) if batching else None,
    )


def _warm_up(model: Any, predict: Any) -> None:
    """Score the logged input example once: lazy imports and caches inside the model's library
    are paid for here, before the worker accepts connections, not by the first caller."""
    example = model.input_example()
    if example is None:
        return
    key = "dataframe_split" if isinstance(example, dict) else "inputs"
    inputs = (model.signature or {}).get("inputs")
    try:
        predict(parse_invocations(json.dumps({key: example}).encode(), None, inputs).data)
    except Exception as exc:  # the worker still serves; the first request will say what fails
        log.warning("warm-up on the input example failed: %s", _first_line(exc))


# -- processes --------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket that child processes can inherit."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CauceError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", code="address-in-use"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(endpoint: str, deployment: str, fd: int) -> None:
    """One worker process: load the model, then serve on the inherited socket until stopped."""
    import uvicorn

    app = build_app(endpoint, deployment)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=75)
    settle_gc()
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=fd)])


class DeploymentServer:
    """Keeps ``workers`` worker processes alive on one listening socket."""

    def __init__(
        self, endpoint: str, deployment: str, sock: socket.socket, workers: int, log: Path | None
    ) -> None:
        self.endpoint, self.deployment, self.sock, self.workers = (
            endpoint,
            deployment,
            sock,
            workers,
        )
        self.log = log
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.restarts = 0
        self._stopping = False

    def _start(self, slot: int) -> None:
        out = open(self.log, "ab") if self.log else None  # noqa: SIM115 - the child keeps it
        try:
            self.processes[slot] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cauce.serving.workers",
                    "worker",
                    self.endpoint,
                    self.deployment,
                    str(self.sock.fileno()),
                ],
                pass_fds=(self.sock.fileno(),),
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=False,
            )
        finally:
            if out is not None:
                out.close()

    def run(self) -> None:
        """Start every worker, restart those that die, stop them all on SIGTERM or SIGINT."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.workers):
            self._start(slot)
        failures = [0] * self.workers
        started = [time.monotonic()] * self.workers
        try:
            while not self._stopping:
                time.sleep(0.1)
                for slot, proc in enumerate(self.processes):
                    if proc is None or proc.poll() is None or self._stopping:
                        continue
                    # Crash loops back off; a worker that ran a while starts again at once.
                    failures[slot] = (
                        failures[slot] + 1 if time.monotonic() - started[slot] < 10 else 0
                    )
                    self._say(f"worker {proc.pid} exited with {proc.returncode}; starting another")
                    time.sleep(RESTART_BACKOFF_S[min(failures[slot], len(RESTART_BACKOFF_S) - 1)])
                    self.restarts += 1
                    started[slot] = time.monotonic()
                    self._start(slot)
        finally:
            self.stop()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stopping = True

    def stop(self) -> None:
        """SIGTERM every worker, then SIGKILL those still there after 10 s."""
        self._stopping = True
        alive = [p for p in self.processes if p is not None and p.poll() is None]
        for proc in alive:
            proc.terminate()
        deadline = time.monotonic() + 10
        for proc in alive:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _say(self, message: str) -> None:
        line = (
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.endpoint}/{self.deployment}: {message}\n"
        )
        if self.log:
            with open(self.log, "a") as out:
                out.write(line)
        else:
            sys.stderr.write(line)


def serve_deployment(
    endpoint: str,
    deployment: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    fd: int | None = None,
    log: Path | None = None,
    workspace: Any = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Serve one deployment until SIGTERM or SIGINT (blocks); ``announce`` is called once the
    deployment is read and the port held."""
    from cauce.serving.endpoints import get_deployment

    found = get_deployment(endpoint, deployment, workspace=workspace)
    sock = socket.socket(fileno=fd) if fd is not None else bind(host, port)
    if announce is not None:
        announce()
    try:
        DeploymentServer(endpoint, deployment, sock, found.workers, log).run()
    finally:
        sock.close()


def _stop_with_parent(every: float = 0.5) -> None:
    """SIGTERM this process when its parent is gone (killed, say): a child left behind would
    hold its model and its socket, serving on an address that nobody sends to any more."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="cauce-parent-watch", daemon=True).start()


def _main(argv: list[str]) -> None:
    """``worker ENDPOINT DEPLOYMENT FD`` or ``serve ENDPOINT DEPLOYMENT FD LOG``."""
    mode, endpoint, deployment, fd = argv[0], argv[1], argv[2], int(argv[3])
    # Ctrl-C reaches the whole process group: the parent decides when its children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_with_parent()
    try:
        if mode == "worker":
            run_worker(endpoint, deployment, fd)
        else:
            serve_deployment(endpoint, deployment, fd=fd, log=Path(argv[4]))
    except CauceError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    _main(sys.argv[1:])
