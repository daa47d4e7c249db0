"""A real ``cauce server`` for the tests that run in both modes, local and through the server.

One server process per test session (a loopback port, its own home); each test gets a fresh
named workspace on it (``/w/NAME``), so that tests stay apart without paying a server start
each: the root conftest's ``seam_workspace``, ``seam_any_workspace`` and ``remote_workspace``.
Every SDK operation goes through the server, data's included; ``server_side(ws)`` is that
workspace as the server holds it, for a test that looks at the store itself.

Importable from every test module: pytest puts this folder (the root conftest's) on sys.path.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from cauce.config import load_settings
from cauce.workspace import Workspace
from served import free_port

_server_sides: dict[str, Workspace] = {}


@dataclass
class TestServer:
    """A running ``cauce server``: its URL and home folder."""

    url: str
    home: Path
    process: subprocess.Popen[bytes]

    def new_workspace(self) -> str:
        """Create a fresh named workspace; its URL (``.../w/NAME``)."""
        name = f"t{secrets.token_hex(6)}"
        answer = httpx.post(f"{self.url}/api/v1/workspaces", json={"name": name}, timeout=30)
        answer.raise_for_status()
        url = f"{self.url}/w/{name}"
        folder = self.home / ".cauce" / "workspaces" / name
        _server_sides[url] = Workspace(load_settings(env={"CAUCE_HOME": str(folder)}))
        return url


def start_server(home: Path, log: Path) -> Iterator[TestServer]:
    """Start ``cauce server`` on a free loopback port over ``home``; stop it afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env.update(CAUCE_HOME=str(home), CAUCE_USER="tester")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cauce.cli.main", "server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cauce server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"cauce server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield TestServer(url, home, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for ws in _server_sides.values():
            ws.close()
        _server_sides.clear()


def server_side(ws: Workspace) -> Workspace:
    """The workspace whose store a test reads: the server's copy of a remote one, else itself."""
    url = ws.settings.server_url
    return ws if url is None else _server_sides[url]
