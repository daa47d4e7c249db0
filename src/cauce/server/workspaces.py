"""The workspaces one server holds: its home (``default``) and named ones under the home.

A client addresses a named workspace by a path prefix, ``http://host:port/w/NAME``, so that one
``CAUCE_SERVER_URL`` (or ``MLFLOW_TRACKING_URI``) says both the server and the workspace. A
named workspace is created by an admin (``POST /api/v1/workspaces``) and lives in
``<home>/.cauce/workspaces/NAME``: its own SQLite database and artifact folder.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.validation import check_name
from cauce.workspace import Workspace

DEFAULT = "default"


class Workspaces:
    """Name → open Workspace, the home one included."""

    def __init__(self, home: Workspace):
        self.home = home
        self.root = home.settings.state_dir / "workspaces"
        self._open: dict[str, Workspace] = {DEFAULT: home}
        self._lock = threading.Lock()

    def get(self, name: str) -> Workspace:
        """The workspace called ``name``; NotFound when it was never created."""
        found = self._open.get(name)
        if found is not None:
            return found
        with self._lock:
            if name not in self._open:
                folder = self._folder(name)
                if not (folder / ".cauce").is_dir():
                    raise NotFound(f"workspace {name!r} does not exist on this server")
                self._open[name] = _workspace(self.home, folder)
            return self._open[name]

    def create(self, name: str) -> Workspace:
        """Create a named workspace (migrated, empty); AlreadyExists when it is there."""
        check_name(name, "workspace name")
        with self._lock:
            folder = self._folder(name)
            if name == DEFAULT or (folder / ".cauce").is_dir():
                raise AlreadyExists(f"workspace {name!r} already exists")
            (folder / ".cauce").mkdir(parents=True)
            ws = _workspace(self.home, folder)
            ws.store.upgrade()
            self._open[name] = ws
            return ws

    def names(self) -> list[str]:
        """Every workspace's name, ``default`` first."""
        return [DEFAULT, *sorted(p.parent.name for p in self.root.glob("*/.cauce") if p.is_dir())]

    def close(self) -> None:
        """Release every workspace's connections."""
        for ws in self._open.values():
            ws.close()

    def _folder(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise InvalidInput(
                f"workspace name {name!r} must not contain '/' or start with '.'",
                details={"field": "name"},
            )
        return self.root / name


def _workspace(home: Workspace, folder: Path) -> Workspace:
    state = folder / ".cauce"
    settings = dataclasses.replace(
        home.settings,
        root=folder,
        config_file=None,
        db_url=f"sqlite:///{state / 'cauce.db'}",
        artifacts=str(state / "artifacts"),
    )
    return Workspace(settings)
