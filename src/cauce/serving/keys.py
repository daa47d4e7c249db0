"""API keys of GenAI endpoints: created, listed and revoked; only their sha256 is stored.

A key is shown once, when it is created (``ck-`` and 43 URL-safe characters: 256 random bits,
so a plain sha256 is the right hash at rest, as for GitHub's tokens: no password to stretch).
An endpoint with ``auth: api_key`` answers GenAI requests only with one of its keys, sent as
``Authorization: Bearer <key>`` (the OpenAI clients' way) or ``api-key: <key>`` (Azure's).

Each key may carry limits, enforced by the router: ``requests_per_minute``,
``tokens_per_minute`` (prompt and answer tokens), and a ``token_budget`` per ``budget_period``
(``day`` or ``month``, UTC) whose spending is kept in the store, so that it survives restarts.

Creating, listing and revoking keys are operations, answered through a server too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import new_id, now_ms
from cauce.store.schema import api_key_usage, api_keys, endpoints
from cauce.validation import check_name
from cauce.workspace import Workspace, current

__all__ = [
    "ApiKey",
    "Limits",
    "create_key",
    "hash_key",
    "list_keys",
    "new_key",
    "revoke_key",
    "shown_prefix",
]

PREFIX = "ck-"


class Limits(BaseModel):
    """What one key may spend."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    token_budget: int | None = Field(default=None, ge=1)
    budget_period: Literal["day", "month"] = "month"


@dataclass(frozen=True)
class ApiKey:
    """A key as the store knows it: never the key itself."""

    endpoint: str
    name: str
    id: str
    prefix: str
    limits: dict[str, Any]
    created_at: int
    revoked_at: int | None
    user: str
    spent: dict[str, Any] | None = None  # the current budget period's usage

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return dict(self.__dict__)


def hash_key(key: str) -> str:
    """The sha256 a key is stored as."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str = PREFIX) -> str:
    """A new secret: ``prefix`` and 256 random bits (43 URL-safe characters).

    The team server's API tokens are made and hashed the same way, with their own prefix.
    """
    return prefix + secrets.token_urlsafe(32)


def shown_prefix(key: str, prefix: str = PREFIX) -> str:
    """The start of a key that is stored and shown to tell keys apart: 36 of its 256 bits."""
    return key[: len(prefix) + 6]


@operation("POST /endpoints/{endpoint}/keys")
def create_key(
    endpoint: str,
    name: str,
    *,
    limits: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
) -> tuple[ApiKey, str]:
    """A new key of ``endpoint``: what is stored, and the key itself (shown only now)."""
    ws = workspace or current()
    check_name(name, "key name")
    try:
        checked = Limits.model_validate(limits or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"limits.{field}: {first['msg']}", details={"field": field}) from None
    key = new_key()
    now = now_ms()
    with ws.store.write() as conn:
        row = _endpoint(conn, endpoint)
        taken = conn.execute(
            select(api_keys.c.id).where(api_keys.c.endpoint_id == row.id, api_keys.c.name == name)
        ).first()
        if taken is not None:
            raise AlreadyExists(f"endpoint {endpoint!r} already has a key named {name!r}")
        key_id = new_id()
        values = {
            "id": key_id,
            "endpoint_id": row.id,
            "name": name,
            "prefix": shown_prefix(key),
            "key_sha256": hash_key(key),
            "limits": checked.model_dump(exclude_none=True),
            "created_at": now,
            "revoked_at": None,
            "user": ws.user,
        }
        conn.execute(api_keys.insert().values(**values))
        _bump(conn, row.id)
        shown = {k: v for k, v in values.items() if k != "key_sha256"}
        audit.record(conn, ws.user, "api_key.create", "api_key", key_id, after=shown)
    return _key(endpoint, values), key


@operation("GET /endpoints/{endpoint}/keys")
def list_keys(endpoint: str, *, workspace: Workspace | None = None) -> list[ApiKey]:
    """An endpoint's keys, revoked ones included, with the current period's spending."""
    ws = workspace or current()
    with ws.store.read() as conn:
        row = _endpoint(conn, endpoint)
        rows = conn.execute(
            select(api_keys).where(api_keys.c.endpoint_id == row.id).order_by(api_keys.c.name)
        ).all()
        found = []
        for key in rows:
            period = budget_period(key.limits.get("budget_period", "month"), now_ms())
            spent = conn.execute(
                select(api_key_usage).where(
                    api_key_usage.c.key_id == key.id, api_key_usage.c.period == period
                )
            ).first()
            found.append(
                _key(
                    endpoint,
                    key._asdict(),
                    spent={
                        "period": period,
                        "requests": spent.requests if spent else 0,
                        "input_tokens": spent.input_tokens if spent else 0,
                        "output_tokens": spent.output_tokens if spent else 0,
                        "cost": spent.cost if spent else 0.0,
                    },
                )
            )
        return found


@operation("POST /endpoints/{endpoint}/keys/{name}/revoke", idempotent=True)
def revoke_key(endpoint: str, name: str, *, workspace: Workspace | None = None) -> ApiKey:
    """Revoke a key: the router refuses it within a second. Its history stays."""
    ws = workspace or current()
    with ws.store.write() as conn:
        row = _endpoint(conn, endpoint)
        key = conn.execute(
            select(api_keys).where(api_keys.c.endpoint_id == row.id, api_keys.c.name == name)
        ).first()
        if key is None:
            raise NotFound(f"endpoint {endpoint!r} has no key named {name!r}")
        if key.revoked_at is not None:
            return _key(endpoint, key._asdict())
        now = now_ms()
        conn.execute(api_keys.update().where(api_keys.c.id == key.id).values(revoked_at=now))
        _bump(conn, row.id)
        audit.record(
            conn,
            ws.user,
            "api_key.revoke",
            "api_key",
            key.id,
            before={"revoked_at": None},
            after={"revoked_at": now},
        )
        return _key(endpoint, {**key._asdict(), "revoked_at": now})


def budget_period(period: str, at_ms: int) -> str:
    """The budget period a moment falls in: ``2026-12-03`` (day) or ``2026-12`` (month), UTC."""
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def _bump(conn: Any, endpoint_id: str) -> None:
    """Move the endpoint's revision: running routers re-read its keys within a second."""
    conn.execute(
        endpoints.update()
        .where(endpoints.c.id == endpoint_id)
        .values(revision=endpoints.c.revision + 1)
    )


def _endpoint(conn: Any, name: str) -> Any:
    row = conn.execute(select(endpoints).where(endpoints.c.name == name)).first()
    if row is None:
        raise NotFound(f"no endpoint named {name!r}", hint="cauce endpoints list shows them")
    return row


def _key(endpoint: str, values: dict[str, Any], spent: dict[str, Any] | None = None) -> ApiKey:
    return ApiKey(
        endpoint=endpoint,
        name=values["name"],
        id=values["id"],
        prefix=values["prefix"],
        limits=dict(values["limits"]),
        created_at=values["created_at"],
        revoked_at=values["revoked_at"],
        user=values["user"],
        spent=spent,
    )
