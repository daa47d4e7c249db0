"""Servers for the serving benchmark: processes in their own process group, on loopback.

A :class:`Server` is started in a new session (so that its workers share one process group),
polled on a health path until it answers 200, measured (CPU time of the process and its
descendants, from ``/proc``) and stopped: SIGTERM to the group, SIGKILL after 10 s, then any
descendant that moved to a session of its own. :func:`serving` does that for a list of servers
whatever happens in between.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from peers import note

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server process in its own process group, its port and its log file."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    log: Path
    ready_path: str
    proc: subprocess.Popen[bytes] | None = None
    started_s: float = 0.0
    ready_after_s: float | None = None

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Launch the process (a new session, so that its workers share one process group)."""
        note(f"starting {self.name}: {' '.join(self.cmd)}")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.started_s = time.perf_counter()

    def wait_ready(self, timeout: float) -> None:
        """Poll the health paths until one answers 200; SystemExit if the process dies first."""
        assert self.proc is not None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                    + self.log_tail()
                )
            if http_status(self.base + self.ready_path) == 200:
                self.ready_after_s = time.perf_counter() - self.started_s
                note(f"{self.name} ready after {self.ready_after_s:.1f} s")
                return
            time.sleep(0.25)
        raise SystemExit(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s; then any descendant left over.

        Descendants are looked up before the signal, so that one that moved to a session of
        its own (and would escape the group signal) is killed too.
        """
        if self.proc is None:
            return
        family = descendants(self.proc.pid)
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            if self._gone_within(grace):
                break
        for pid in family:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                note(f"{self.name}: killed left-over process {pid}")

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server's processes so far (Linux /proc; else 0)."""
        if self.proc is None:
            return 0.0
        return sum(_cpu_s(pid) for pid in [self.proc.pid, *descendants(self.proc.pid)])

    def _gone_within(self, seconds: float) -> bool:
        assert self.proc is not None
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None and not _group_alive(self.proc.pid):
                return True
            time.sleep(0.1)
        return False

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def descendants(pid: int) -> list[int]:
    """The processes under ``pid`` (children, grandchildren, …), from /proc; [] elsewhere."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def http_status(url: str) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def post_json(url: str, body: bytes) -> tuple[int, str]:
    """Status and body of one POST (to check that a server scores before it is measured)."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


@contextlib.contextmanager
def serving(servers: list[Server], timeout: float) -> Iterator[list[Server]]:
    """Start every server, wait until each is ready, and stop them all on the way out."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()
