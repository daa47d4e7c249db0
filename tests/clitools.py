"""Running the real ``cauce`` command in a subprocess, as a user would, and reading its errors.

Importable from every test module: pytest puts this folder (the root conftest's) on sys.path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def cauce(
    home: Path,
    *args: str,
    check: bool = True,
    timeout: float = 240,
    server: str | None = None,
    token: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``cauce ARGS`` in the workspace ``home``, through a server: the one at URL ``server``, else
    the test's own when it has one (``CAUCE_SERVER_URL``), sending ``token`` when given; with
    ``check``, it must exit 0."""
    keep = ("CAUCE_SERVER_URL",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_") or k in keep}
    env.update({"CAUCE_HOME": str(home), "CAUCE_USER": "cli-tester", "COLUMNS": "200"})
    if server is not None:
        env["CAUCE_SERVER_URL"] = server
    if token is not None:
        env["CAUCE_SERVER_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "cauce.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """A user mistake: exit 1, no traceback, one ``error:`` line naming each of ``words``."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:"), lines[0]
    for word in words:
        assert word in lines[0], lines[0]


def benchmark(
    script: str, cwd: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/SCRIPT ARGS`` in ``cwd``, with none of the caller's CAUCE_ settings;
    it must exit 0 (the message shows the end of what it printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def wait_until(check: Callable[[], Any], timeout: float = 30, every: float = 0.05) -> Any:
    """Call ``check`` until it returns something true; that value (AssertionError at timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {value!r}")
        time.sleep(every)
