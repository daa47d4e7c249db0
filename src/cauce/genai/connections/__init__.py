"""Connections to OpenAI-compatible LLM servers (OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp's server, Cauce's own GenAI endpoints) for chat and embeddings.

A connection is a ``kind: Connection`` spec. Its API key is read when the spec is applied (from
an environment variable, a file, or the spec itself), encrypted at rest (:mod:`cauce.genai.
secrets`) and only ever decrypted to make a call: the stored spec, the audit log, ``cauce
connections show`` and every error name where it came from, never what it is.

A key never travels to or from a Cauce server. A workspace on a server stores where the key is
read (``{"env": VAR}`` or ``{"file": PATH}``), and each caller reads it there, on its own
machine, when it makes a call; a key written into the spec itself is refused there. A key
stored encrypted in the server's own workspace (applied on the server's machine) stays there.

Example::

    cauce.apply({"kind": "Connection", "name": "openai", "base_url": "https://api.openai.com/v1",
                 "api_key": {"env": "OPENAI_API_KEY"}, "models": {"chat": "gpt-4o-mini"}})
    answer = cauce.connections.client("openai").chat([{"role": "user", "content": "Hi"}])
    answer.text, answer.usage.output_tokens
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection as DBConnection
from sqlalchemy import select

from cauce.errors import InvalidInput, NotFound, NotSupported
from cauce.genai import secrets
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import new_id, now_ms
from cauce.store.schema import connections
from cauce.validation import Duration, check_name
from cauce.workspace import Workspace, acting_as, current

if TYPE_CHECKING:
    from cauce.genai.connections.calls import LLMClient
    from cauce.specs import Applied

__all__ = [
    "Connection",
    "ConnectionSpec",
    "client",
    "delete",
    "get",
    "list_connections",
    "put",
    "test",
    "warm",
]

Provider = Literal["openai", "azure_openai"]
# What the stored spec says in place of a key written into the spec itself.
ENCRYPTED = "<encrypted>"
_KEY_STAYS_HOME = (
    "give api_key as {env: VAR} or {file: PATH}: a workspace on a server stores where the key "
    "is read, and each caller reads it on its own machine"
)


class SecretSource(BaseModel):
    """Where a secret is read when the spec is applied: an environment variable or a file."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretSource:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self


class Models(BaseModel):
    """The models a call uses when it names none."""

    model_config = ConfigDict(extra="forbid")

    chat: str | None = None
    embeddings: str | None = None


class Price(BaseModel):
    """Prices in the currency of your bill, per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class ConnectionSpec(BaseModel):
    """A ``kind: Connection`` document."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["Connection"] = "Connection"
    name: str
    provider: Provider = "openai"
    base_url: str | None = None
    api_key: str | SecretSource | None = None
    api_version: str | None = None
    models: Models = Field(default_factory=Models)
    timeout: Duration = 60_000
    max_retries: int = Field(default=2, ge=0, le=10)
    headers: dict[str, str] = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "connection name")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, not {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        secret_like = [k for k in value if k.lower() in ("authorization", "api-key", "x-api-key")]
        if secret_like:
            raise ValueError(f"{secret_like[0]} holds a secret: give it as api_key instead")
        return value

    @model_validator(mode="after")
    def _provider(self) -> ConnectionSpec:
        if self.provider == "azure_openai" and (self.base_url is None or not self.api_version):
            raise ValueError("an azure_openai connection needs base_url and api_version")
        if self.timeout <= 0:
            raise ValueError("timeout must be above 0")
        return self


@dataclass(frozen=True)
class Connection:
    """A stored connection: its spec with the key's source in place of the key."""

    name: str
    id: str
    provider: str
    spec: dict[str, Any]
    has_secret: bool
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view (it holds no secret)."""
        return asdict(self)


# -- applying ----------------------------------------------------------------------------------


def check_connection(ws: Workspace, spec: ConnectionSpec, declared: Any) -> None:
    """Refuse a spec whose key cannot be read, before anything is written (on a server: a spec
    that holds a key, which only the caller's side may read)."""
    if acting_as() is None:
        read_secret(spec)
    else:
        _refuse_written_key(spec)


def save_connection(conn: DBConnection, ws: Workspace, spec: ConnectionSpec) -> Applied:
    """Apply a ``kind: Connection`` document in the caller's transaction (``cauce apply``).

    On a server the key is not read: its source is stored, to be read by each caller.
    """
    from cauce.specs import Applied, Change, changes, spec_digest

    body = stored_spec(spec)
    on_server = acting_as() is not None
    if on_server:
        _refuse_written_key(spec)
    secret = None if on_server else read_secret(spec)
    digest, now = spec_digest(body), now_ms()
    row = conn.execute(select(connections).where(connections.c.name == spec.name)).first()
    token = secrets.encrypt(ws, secret) if secret is not None else None
    values = {
        "provider": spec.provider,
        "spec": body,
        "spec_sha256": digest,
        "secret": token,
        "updated_at": now,
    }
    if row is None:
        row_id = new_id()
        conn.execute(
            connections.insert().values(id=row_id, name=spec.name, created_at=now, **values)
        )
        audit.record(conn, ws.user, "connection.create", "connection", row_id, after=body)
        return Applied("Connection", spec.name, "created")
    secret_changed = _stored_secret(ws, row) != secret
    if row.spec_sha256 == digest and not secret_changed:
        return Applied("Connection", spec.name, "unchanged")
    conn.execute(connections.update().where(connections.c.id == row.id).values(**values))
    found = changes(row.spec, body)
    if secret_changed:
        # Which key, never the key: the change is named, its values are not.
        found = (
            *found,
            Change(
                "api_key",
                "(a key)" if row.secret else None,
                "(another key)" if secret is not None else None,
            ),
        )
    after = {**body, "api_key_changed": True} if secret_changed else body
    audit.record(
        conn, ws.user, "connection.update", "connection", row.id, before=row.spec, after=after
    )
    return Applied("Connection", spec.name, "updated", found)


@operation("PUT /connections/{name}")
def put(name: str, spec: dict[str, Any], *, workspace: Workspace | None = None) -> Connection:
    """Create or replace connection ``name`` from a ``kind: Connection`` spec whose key is given
    by where it is read (``{"env": VAR}`` or ``{"file": PATH}``), never by the key itself.

    The key is not stored: every call reads it from there, on the caller's machine.
    """
    from pydantic import ValidationError

    from cauce.specs import spec_digest, validation_error

    try:
        parsed = ConnectionSpec.model_validate({"kind": "Connection", **spec, "name": name})
    except ValidationError as exc:
        raise validation_error("Connection", exc, ConnectionSpec) from None
    _refuse_written_key(parsed)
    ws = workspace or current()
    body = stored_spec(parsed)
    with ws.store.write() as conn:
        row = conn.execute(select(connections).where(connections.c.name == name)).first()
        now = now_ms()
        values = {
            "provider": parsed.provider,
            "spec": body,
            "spec_sha256": spec_digest(body),
            "secret": None,
            "updated_at": now,
        }
        if row is None:
            row_id = new_id()
            conn.execute(
                connections.insert().values(id=row_id, name=name, created_at=now, **values)
            )
            audit.record(conn, ws.user, "connection.create", "connection", row_id, after=body)
        else:
            conn.execute(connections.update().where(connections.c.id == row.id).values(**values))
            after = {**body, "api_key_changed": True} if row.secret else body
            audit.record(
                conn, ws.user, "connection.update", "connection", row.id, before=row.spec,
                after=after,
            )  # fmt: skip
        return _connection(connection_row(conn, name))


def _refuse_written_key(spec: ConnectionSpec) -> None:
    if isinstance(spec.api_key, str):
        raise InvalidInput(
            f"connection {spec.name!r}: api_key holds the key itself, which is not sent to or "
            f"stored by a server",
            hint=_KEY_STAYS_HOME,
            details={"field": "api_key"},
        )


def stored_spec(spec: ConnectionSpec) -> dict[str, Any]:
    """The spec as stored and shown: a key given in the spec becomes ``<encrypted>``."""
    body = spec.model_dump(mode="json", exclude_none=True, exclude={"kind"})
    body["timeout"] = f"{spec.timeout}ms"  # reads back as the same duration
    if isinstance(spec.api_key, str):
        body["api_key"] = ENCRYPTED
    return body


def read_secret(spec: ConnectionSpec) -> str | None:
    """The key a spec gives, read from where it says; an unreadable source is named."""
    source = spec.api_key
    if source is None or isinstance(source, str):
        return source
    if source.env is not None:
        value = os.environ.get(source.env)
        if not value:
            raise InvalidInput(
                f"connection {spec.name!r}: api_key.env names {source.env}, which is not set",
                details={"field": "api_key.env"},
            )
        return value
    path = Path(os.path.expanduser(str(source.file)))
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise InvalidInput(
            f"connection {spec.name!r}: cannot read api_key.file {path}: {exc.strerror}",
            details={"field": "api_key.file"},
        ) from None
    if not value:
        raise InvalidInput(f"connection {spec.name!r}: api_key.file {path} is empty")
    return value


def _stored_secret(ws: Workspace, row: Any) -> str | None:
    if row.secret is None:
        return None
    try:
        return secrets.decrypt(ws, row.secret, f"connection {row.name!r}")
    except InvalidInput:
        return None  # under another key: storing it again under this one is a change


# -- reading and using -------------------------------------------------------------------------


@operation("GET /connections/{name}")
def get(name: str, *, workspace: Workspace | None = None) -> Connection:
    """A connection, without its secret."""
    ws = workspace or current()
    with ws.store.read() as conn:
        return _connection(connection_row(conn, name))


@operation("GET /connections")
def list_connections(*, workspace: Workspace | None = None) -> list[Connection]:
    """Every connection, by name."""
    ws = workspace or current()
    with ws.store.read() as conn:
        rows = conn.execute(select(connections).order_by(connections.c.name))
        return [_connection(r) for r in rows]


@operation("DELETE /connections/{name}", idempotent=False)
def delete(name: str, *, workspace: Workspace | None = None) -> None:
    """Delete a connection and its secret (audited)."""
    from cauce.errors import Conflict
    from cauce.store.schema import deployments, endpoints

    ws = workspace or current()
    with ws.store.write() as conn:
        row = connection_row(conn, name)
        serving = conn.execute(
            select(endpoints.c.name, deployments.c.name)
            .join(endpoints, endpoints.c.id == deployments.c.endpoint_id)
            .where(deployments.c.connection_id == row.id)
        ).all()
        if serving:
            names = ", ".join(f"{e}/{d}" for e, d in serving)
            raise Conflict(
                f"connection {name!r} is served by deployment(s) {names}",
                hint="delete those deployments first (cauce deployments delete)",
            )
        conn.execute(connections.delete().where(connections.c.id == row.id))
        audit.record(conn, ws.user, "connection.delete", "connection", row.id, before=row.spec)


def warm(names: Iterable[str], *, workspace: Workspace | None = None) -> None:
    """Make the clients of the connections ``names`` and import what their calls use now
    (the openai client took 1.3 s to import on a small machine), so that the first call's
    time limit and latency are its own; prompts' Jinja sandbox too, for the calls that
    render one."""
    import jinja2.sandbox  # noqa: F401

    ws = workspace or current()
    for name in sorted(set(names)):
        client(name, workspace=ws).warm()


def client(name: str, *, workspace: Workspace | None = None) -> LLMClient:
    """A client for chat and embeddings through the connection, its key decrypted, or read
    from where the spec says when the workspace does not store it.

    Clients are kept for the process, one per stored state of a connection (and key), so that
    calls reuse their HTTP connections (keep-alive); applying a changed spec makes a new one.
    """
    from cauce.genai.connections.calls import LLMClient

    ws = workspace or current()
    if ws.remote:
        found, token = get(name, workspace=ws), None
    else:
        with ws.store.read() as conn:
            row = connection_row(conn, name)
        found, token = _connection(row), row.secret
    spec = ConnectionSpec.model_validate({"kind": "Connection", **found.spec, "api_key": None})
    # A key kept encrypted is decrypted on a cache miss only; a key read from its source is
    # read on every call, so that a changed variable or file is used at once.
    source = None if token else _key_source(found)
    secret = read_secret(spec.model_copy(update={"api_key": source})) if source else None
    key = (id(ws), found.id, found.updated_at, token, secret)
    with _clients_lock:
        cached = _clients.get(key)
        if cached is not None and cached.workspace is ws:
            return cached
    if token:
        secret = secrets.decrypt(ws, token, f"connection {name!r}")
    made = LLMClient(name, spec, secret, workspace=ws)
    with _clients_lock:
        return _clients.setdefault(key, made)


def _key_source(found: Connection) -> SecretSource | None:
    """Where a caller reads the key of a connection whose workspace does not give it."""
    given = found.spec.get("api_key")
    if given == ENCRYPTED:
        raise NotSupported(
            f"connection {found.name!r} keeps its key encrypted in the server's workspace, "
            f"and a key never leaves a server",
            hint=f"replace it with cauce.connections.put: {_KEY_STAYS_HOME}",
        )
    return None if given is None else SecretSource.model_validate(given)


_clients: dict[tuple[Any, ...], LLMClient] = {}
_clients_lock = threading.Lock()


def test(name: str, *, workspace: Workspace | None = None) -> dict[str, Any]:
    """Reach the server: list its models and, when the connection names a chat model, ask it
    for one token. Returns what was seen; raises LLMError when the server cannot be used."""
    llm = client(name, workspace=workspace)
    found: dict[str, Any] = {"connection": name, "base_url": llm.base_url}
    found["models"] = llm.models()
    if llm.spec.models.chat:
        answer = llm.chat([{"role": "user", "content": "Say OK."}], max_tokens=1, temperature=0)
        found["chat"] = {
            "model": answer.model,
            "latency_ms": answer.latency_ms,
            "usage": answer.usage.to_dict() if answer.usage else None,
        }
    return found


def connection_row(conn: DBConnection, name: str) -> Any:
    """The stored row of a connection, in the caller's transaction; NotFound otherwise."""
    row = conn.execute(select(connections).where(connections.c.name == name)).first()
    if row is None:
        raise NotFound(f"no connection named {name!r}", hint="cauce connections list shows them")
    return row


def _connection(row: Any) -> Connection:
    return Connection(
        name=row.name,
        id=row.id,
        provider=row.provider,
        spec=dict(row.spec),
        has_secret=row.secret is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
