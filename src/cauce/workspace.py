"""Workspace: the handle every module receives (settings + metadata store + artifact store)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cauce.config import CONFIG_FILE, STATE_DIR, Settings, config_template, load_settings

if TYPE_CHECKING:
    from cauce.artifacts import ArtifactStore
    from cauce.client import ServerClient
    from cauce.store import Store


__all__ = ["Workspace", "acting_as", "current", "enter", "init", "reset", "set_server", "using"]

# Set by the server for the request it is answering: who acts, and in which workspace.
_acting: ContextVar[str | None] = ContextVar("cauce_acting_user", default=None)
_using: ContextVar[Workspace | None] = ContextVar("cauce_using_workspace", default=None)


class Workspace:
    """One metadata store, one artifact root and their settings; or a Cauce server's workspace.

    With ``server_url`` set, operations go to the server (``server``) and the local store is
    not opened: an operation that has no remote form raises NotSupported.
    """

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def remote(self) -> bool:
        """Whether this workspace lives on a Cauce server."""
        return self.settings.server_url is not None

    def child_environment(self) -> dict[str, str]:
        """The environment for a child process that must work on this workspace: this one's
        with the server this workspace is on (set by :func:`set_server` too), or none."""
        server_vars = ("CAUCE_SERVER_URL", "CAUCE_SERVER_TOKEN")
        env = {k: v for k, v in os.environ.items() if k not in server_vars}
        if self.settings.server_url is not None:
            env["CAUCE_SERVER_URL"] = self.settings.server_url
            if self.settings.server_token:
                env["CAUCE_SERVER_TOKEN"] = self.settings.server_token
        return env

    @cached_property
    def server(self) -> ServerClient:
        """The client of the server this workspace lives on."""
        from cauce.client import ServerClient
        from cauce.errors import NotSupported

        if self.settings.server_url is None:
            raise NotSupported("this workspace is local: it has no server")
        return ServerClient(self.settings.server_url, token=self.settings.server_token)

    @cached_property
    def store(self) -> Store:
        """The metadata store, migrated on first use."""
        from cauce.store import Store

        if self.remote:
            from cauce.errors import NotSupported

            raise NotSupported(
                f"this operation needs the metadata store itself, and the workspace is on the "
                f"server {self.settings.server_url}",
                hint="run it on the server's machine, or unset CAUCE_SERVER_URL",
            )
        return Store(
            self.settings.db_url,
            sqlite_sync=self.settings.sqlite_sync,
            busy_timeout_ms=self.settings.busy_timeout_ms,
        )

    @cached_property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store."""
        from cauce.artifacts import ArtifactStore

        if self.remote:
            from cauce.client import RemoteArtifactStore

            return RemoteArtifactStore(self.server)
        options = {}
        if self.settings.s3_endpoint_url and self.settings.artifacts.startswith("s3://"):
            options["endpoint_url"] = self.settings.s3_endpoint_url
        return ArtifactStore(self.settings.artifacts, storage_options=options)

    @property
    def user(self) -> str:
        """Who is recorded as the actor of runs and audit events (on a server: the principal)."""
        return _acting.get() or self.settings.user

    @property
    def cache_dir(self) -> Path:
        """A local folder for downloaded artifacts (models being loaded, for instance)."""
        return self.settings.state_dir / "cache"

    def close(self) -> None:
        """Release database connections."""
        if "store" in self.__dict__:
            self.store.close()
        if "server" in self.__dict__:
            self.server.close()


_lock = threading.Lock()
_current: Workspace | None = None
_current_pid: int | None = None


def current() -> Workspace:
    """The workspace of this process, discovered from the environment on first use."""
    global _current, _current_pid
    using = _using.get()
    if using is not None:
        return using
    # A forked child must not share its parent's database connections.
    if _current is not None and _current_pid == os.getpid():
        return _current
    with _lock:
        if _current is None or _current_pid != os.getpid():
            _current = Workspace(load_settings())
            _current_pid = os.getpid()
        return _current


@contextmanager
def using(workspace: Workspace, user: str | None = None) -> Iterator[Workspace]:
    """Make ``workspace`` current (and ``user`` its actor) in this context: a server answering
    a request for one of its workspaces."""
    ws_token = _using.set(workspace)
    user_token = _acting.set(user) if user is not None else None
    try:
        yield workspace
    finally:
        _using.reset(ws_token)
        if user_token is not None:
            _acting.reset(user_token)


def enter(workspace: Workspace, user: str) -> None:
    """Make ``workspace`` current and ``user`` its actor for the rest of this context (a worker
    thread's copied context that serves one request)."""
    _using.set(workspace)
    _acting.set(user)


def acting_as() -> str | None:
    """The principal a server is acting for in this context (None outside a request)."""
    return _acting.get()


def reset() -> None:
    """Forget the current workspace, so that the next use discovers it again."""
    global _current
    with _lock:
        if _current is not None and _current_pid == os.getpid():
            _current.close()
        _current = None


def set_server(url: str | None, token: str | None = None) -> Workspace:
    """Work through the Cauce server at ``url`` from now on in this process, as
    ``CAUCE_SERVER_URL`` does (``token``: as ``CAUCE_SERVER_TOKEN``); ``None`` goes back to
    the local workspace. The new current workspace. Example::

        cauce.set_server("http://cauce.internal:8080", token=os.environ["CAUCE_TOKEN"])
    """
    global _current, _current_pid
    server_vars = ("CAUCE_SERVER_URL", "CAUCE_SERVER_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in server_vars}
    if url is not None:
        env["CAUCE_SERVER_URL"] = url
        token = token if token is not None else os.environ.get("CAUCE_SERVER_TOKEN")
        if token:
            env["CAUCE_SERVER_TOKEN"] = token
    workspace = Workspace(load_settings(env=env))  # a bad URL fails here, before any change
    with _lock:
        if _current is not None and _current_pid == os.getpid():
            _current.close()
        _current, _current_pid = workspace, os.getpid()
    return workspace


def init(path: Path | None = None) -> Workspace:
    """Create ``cauce.yaml`` and ``.cauce/`` in ``path`` and migrate the database.

    Refused, with nothing written, where the settings name a server: the workspace is there.
    """
    from cauce.errors import NotSupported

    root = (path or Path.cwd()).resolve()
    env = {k: v for k, v in os.environ.items() if k != "CAUCE_HOME"}
    server_url = load_settings(env={**env, "CAUCE_HOME": str(root)}).server_url
    if server_url is not None:
        raise NotSupported(
            f"the workspace is on the server {server_url}: there is no local one to create",
            hint="unset CAUCE_SERVER_URL, or server_url in cauce.yaml, to create a local one",
        )
    root.mkdir(parents=True, exist_ok=True)
    config = root / CONFIG_FILE
    if not config.exists():
        config.write_text(config_template())
    (root / STATE_DIR).mkdir(exist_ok=True)
    workspace = Workspace(load_settings(env=env, cwd=root))
    workspace.store.upgrade()
    if "://" not in workspace.settings.artifacts:
        Path(workspace.settings.artifacts).mkdir(parents=True, exist_ok=True)
    return workspace
