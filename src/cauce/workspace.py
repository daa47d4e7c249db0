"""Workspace: the handle every module receives (settings + metadata store + artifact store)."""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cauce.config import CONFIG_FILE, STATE_DIR, Settings, config_template, load_settings

if TYPE_CHECKING:
    from cauce.artifacts import ArtifactStore
    from cauce.store import Store


__all__ = ["Workspace", "current", "init", "reset"]


class Workspace:
    """One metadata store, one artifact root and their settings."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def store(self) -> Store:
        """The metadata store, migrated on first use."""
        from cauce.store import Store

        return Store(
            self.settings.db_url,
            sqlite_sync=self.settings.sqlite_sync,
            busy_timeout_ms=self.settings.busy_timeout_ms,
        )

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store."""
        from cauce.artifacts import ArtifactStore

        options = {}
        if self.settings.s3_endpoint_url and self.settings.artifacts.startswith("s3://"):
            options["endpoint_url"] = self.settings.s3_endpoint_url
        return ArtifactStore(self.settings.artifacts, storage_options=options)

    @property
    def user(self) -> str:
        """Who is recorded as the actor of runs and audit events."""
        return self.settings.user

    @property
    def cache_dir(self) -> Path:
        """A local folder for downloaded artifacts (models being loaded, for instance)."""
        return self.settings.state_dir / "cache"

    def close(self) -> None:
        """Release database connections."""
        if "store" in self.__dict__:
            self.store.close()


_lock = threading.Lock()
_current: Workspace | None = None
_current_pid: int | None = None


def current() -> Workspace:
    """The workspace of this process, discovered from the environment on first use."""
    global _current, _current_pid
    # A forked child must not share its parent's database connections.
    if _current is not None and _current_pid == os.getpid():
        return _current
    with _lock:
        if _current is None or _current_pid != os.getpid():
            _current = Workspace(load_settings())
            _current_pid = os.getpid()
        return _current


def reset() -> None:
    """Forget the current workspace, so that the next use discovers it again."""
    global _current
    with _lock:
        if _current is not None and _current_pid == os.getpid():
            _current.close()
        _current = None


def init(path: Path | None = None) -> Workspace:
    """Create ``cauce.yaml`` and ``.cauce/`` in ``path`` and migrate the database."""
    root = (path or Path.cwd()).resolve()
    root.mkdir(parents=True, exist_ok=True)
    config = root / CONFIG_FILE
    if not config.exists():
        config.write_text(config_template())
    (root / STATE_DIR).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "CAUCE_HOME"}
    workspace = Workspace(load_settings(env=env, cwd=root))
    workspace.store.upgrade()
    if "://" not in workspace.settings.artifacts:
        Path(workspace.settings.artifacts).mkdir(parents=True, exist_ok=True)
    return workspace
