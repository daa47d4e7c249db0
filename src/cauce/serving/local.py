"""Run an endpoint on this machine: the router in this process, one deployment server per
deployment in child processes, each started with ``cauce deployments serve`` semantics, and the
rollout controller for the endpoint in a thread.

Against a Cauce server too: the router reads the endpoint and its keys, and reports its
measurements and keys' spending, through operations; the collector's files, the deployment
servers and the controller's measuring stay on this machine.

The supervisor follows the store: a deployment applied while the endpoint runs is started, one
deleted is stopped, one updated (a new model version, other settings) is started anew and
swapped in once ready, and a deployment server that dies is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cauce.serving.http import settle_gc
from cauce.serving.rollouts import Controller
from cauce.serving.router import Router
from cauce.serving.upstream import Upstream, UpstreamError
from cauce.serving.workers import bind
from cauce.workspace import Workspace

log = logging.getLogger("cauce.serve")
SUPERVISE_EVERY_S = 0.5


@dataclass
class _Running:
    process: subprocess.Popen[bytes]
    url: str
    fingerprint: tuple[str, str]  # pinned version id, spec: a change means a new server


class Supervisor:
    """Keeps one deployment server process per deployment of the endpoint."""

    def __init__(self, ws: Workspace, router: Router) -> None:
        self.ws = ws
        self.router = router
        self.running: dict[str, _Running] = {}
        self.logs = ws.settings.state_dir / "logs" / "endpoints" / router.name
        self._task: asyncio.Task[None] | None = None

    def addresses(self) -> dict[str, str]:
        """Deployment name -> the URL its server listens on."""
        return {name: running.url for name, running in self.running.items()}

    async def start(self) -> None:
        """Start every deployment's server, then keep following the store."""
        self.logs.mkdir(parents=True, exist_ok=True)
        await self.reconcile()
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(SUPERVISE_EVERY_S)
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning(
                    "endpoint %s: supervising deployments failed: %s", self.router.name, exc
                )

    async def reconcile(self) -> None:
        """Make the running servers match the endpoint's deployments."""
        # A deployment that runs in the router has no server of its own.
        wanted = {
            d.name: d for d in self.router.endpoint.deployments if d.spec.get("runs_in") != "router"
        }
        for name in list(self.running):
            if name not in wanted:
                self._stop(self.running.pop(name))
        for name, deployment in wanted.items():
            fingerprint = (deployment.target_id, json.dumps(deployment.spec, sort_keys=True))
            running = self.running.get(name)
            if running is None:
                self.running[name] = self._start(name, fingerprint)
            elif running.process.poll() is not None:
                self._note(name, f"deployment server exited with {running.process.returncode}")
                self.running[name] = self._start(name, fingerprint)
            elif running.fingerprint != fingerprint:
                fresh = self._start(name, fingerprint)
                await _wait_ready(fresh.url, timeout=120)
                self.running[name] = fresh
                self._stop(running)

    def _start(self, name: str, fingerprint: tuple[str, str]) -> _Running:
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        log_file = self.logs / f"{name}.log"
        try:
            with open(log_file, "ab") as out:
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "cauce.serving.workers",
                        "serve",
                        self.router.name,
                        name,
                        str(sock.fileno()),
                        str(log_file),
                    ],
                    pass_fds=(sock.fileno(),),
                    env=self.ws.child_environment(),  # the token stays off the command line
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        finally:
            sock.close()  # the child holds it now
        return _Running(process, f"http://127.0.0.1:{port}", fingerprint)

    def _stop(self, running: _Running) -> None:
        running.process.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        """Stop following and stop every deployment server (SIGKILL after 15 s)."""
        if self._task is not None:
            self._task.cancel()
        for running in self.running.values():
            self._stop(running)
        deadline = time.monotonic() + 15
        for running in self.running.values():
            while running.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if running.process.poll() is None:
                running.process.kill()
                running.process.wait()
        self.running.clear()

    def _note(self, name: str, message: str) -> None:
        with open(self.logs / f"{name}.log", "a") as out:
            out.write(
                f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.router.name}/{name}: {message}\n"
            )


async def _wait_ready(url: str, timeout: float) -> None:
    upstream = Upstream(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(UpstreamError, TimeoutError):
                reply = await upstream.request(b"GET", b"/v2/health/ready", b"", [], timeout=2.0)
                if reply.status == 200:
                    return
            await asyncio.sleep(0.1)
    finally:
        await upstream.close()


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, which remembers whether SIGINT stopped it."""

        interrupted = False

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.interrupted = self.interrupted or sig == signal.SIGINT
            super().handle_exit(sig, frame)

    return Server


def serve_endpoint(
    ws: Workspace,
    endpoint: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    deployment_urls: dict[str, str] | None = None,
    collect: bool = True,
    announce: Callable[[], None] | None = None,
) -> None:
    """Serve an endpoint until SIGINT or SIGTERM (blocks); ``announce`` is called once the
    endpoint is read and the port held.

    With ``deployment_urls`` only the router runs, sending each deployment's share to its URL
    (deployments served elsewhere, as in Kubernetes); otherwise every deployment is started here.
    """
    import uvicorn

    sock = bind(host, port)
    supervisor: Supervisor | None = None  # set below; the router asks it for addresses

    def addresses() -> dict[str, str]:
        if deployment_urls is not None:
            return deployment_urls
        return supervisor.addresses() if supervisor is not None else {}

    router = Router(ws, endpoint, addresses, collect=collect)
    controller = Controller(ws, endpoint, beside_router=True)
    if announce is not None:
        announce()

    async def start_controller() -> None:
        controller.start()

    async def settle() -> None:  # the last hook: then uvicorn starts taking requests
        settle_gc()

    async def stop_controller() -> None:
        await asyncio.to_thread(controller.stop)

    router.on_start.append(start_controller)
    router.on_stop.append(stop_controller)
    if deployment_urls is None:
        supervisor = Supervisor(ws, router)
        router.on_start.append(supervisor.start)
        router.on_stop.append(supervisor.stop)
    router.on_start.append(settle)
    config = uvicorn.Config(
        router, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=75
    )
    server = _server_class()(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if server.interrupted:
        # Ctrl-C ends with KeyboardInterrupt (exit 130) however uvicorn returned: it stops on
        # SIGINT, then re-raises the signal to the handler it found, which does not always end
        # in KeyboardInterrupt (with SIGINT ignored, it never does).
        raise KeyboardInterrupt
