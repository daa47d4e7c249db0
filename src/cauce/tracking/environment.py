"""What a run records about where it came from: code version, entry point, Python, packages.

Each value is computed once per process: they do not change while it runs, and computing the
package hash costs tens of milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceInfo:
    """The code and environment a run executes."""

    commit: str | None
    dirty: bool | None
    entry_point: str
    python_version: str
    packages_hash: str


def entry_point() -> str:
    """The script or module the process runs, or how Python was started."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return f"-m {spec.name}"
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 in ("", "-c", "-"):  # the REPL, python -c, a script piped to python -
        return {"": "<interactive>", "-c": "-c", "-": "<stdin>"}[argv0]
    return str(Path(argv0).resolve())


@functools.lru_cache(maxsize=16)
def git_state(folder: str) -> tuple[str | None, bool | None]:
    """The commit checked out in ``folder`` and whether the work tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return commit.stdout.strip(), dirty


@functools.lru_cache(maxsize=1)
def installed_packages() -> str:
    """The installed distributions, one ``name==version`` a line, sorted."""
    from importlib import metadata

    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            seen[name.lower()] = dist.version
    return "".join(f"{name}=={version}\n" for name, version in sorted(seen.items()))


def packages_hash() -> str:
    """sha256 of :func:`installed_packages`."""
    return hashlib.sha256(installed_packages().encode()).hexdigest()


@functools.lru_cache(maxsize=16)
def _source_info(folder: str, entry: str) -> SourceInfo:
    commit, dirty = git_state(folder)
    return SourceInfo(commit, dirty, entry, platform.python_version(), packages_hash())


def source_info() -> SourceInfo:
    """The code version, entry point, Python version and package hash of this process."""
    entry = entry_point()
    folder = str(Path(entry).parent) if entry.startswith("/") else str(Path.cwd())
    return _source_info(folder, entry)
