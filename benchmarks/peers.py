"""What every side-by-side benchmark shares: the peer tool's own virtual environment and a
description of the machine the figures come from."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(
    venv: Path,
    requirements: Sequence[str],
    ready: str,
    env: dict[str, str] | None = None,
) -> Path:
    """Create ``venv`` and pip-install ``requirements`` from PyPI unless ``ready`` — a Python
    snippet that exits 0 when the peer is installed as wanted — already passes; its python."""
    python = venv_python(venv)
    if python.exists():
        probe = subprocess.run([str(python), "-c", ready], capture_output=True, env=env)
        if probe.returncode == 0:
            return python
    else:
        note(f"creating {venv} (python -m venv)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    note(f"installing {' '.join(requirements)} into {venv} (takes a minute or two)")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, *requirements], check=True, stdout=sys.stderr)
    return python


def machine(**extra: Any) -> dict[str, Any]:
    """What the figures were measured on, plus ``extra`` fields."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        **extra,
    }


def load_average() -> float | None:
    """The 1-minute load average, where the system has one."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def note(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
