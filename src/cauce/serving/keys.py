"""API keys of GenAI endpoints: created, listed and revoked; only their sha256 is stored.

A key is shown once, when it is created (``ck-`` and 43 URL-safe characters: 256 random bits,
so a plain sha256 is the right hash at rest, as for GitHub's tokens: no password to stretch).
An endpoint with ``auth: api_key`` answers GenAI requests only with one of its keys, sent as
``Authorization: Bearer <key>`` (the OpenAI clients' way) or ``api-key: <key>`` (Azure's).

Each key may carry limits, enforced by the router: ``requests_per_minute``,
``tokens_per_minute`` (prompt and answer tokens), and a ``token_budget`` per ``budget_period``
(``day`` or ``month``, UTC) whose spending is kept in the store, so that it survives restarts.

Creating, listing and revoking keys are operations, answered through a server too, and so are
what a router reads (:func:`live_keys`) and reports (:func:`add_usage`) every second.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, select

from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.store import insert_ignore, new_id, now_ms, upsert
from cauce.store.schema import api_key_usage, api_key_usage_reports, api_keys, endpoints
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


@dataclass(frozen=True)
class LiveKey:
    """A live key as a router needs it: its hash, limits, and the current period's spending."""

    sha256: str
    id: str
    name: str
    limits: dict[str, Any]
    period: str
    spent: int  # prompt and answer tokens


@operation("GET /endpoints/{endpoint}/keys/live", role="editor")
def live_keys(endpoint: str, *, workspace: Workspace | None = None) -> tuple[LiveKey, ...]:
    """The endpoint's live keys by hash, for its routers (hence an editor's: a hash of a
    256-bit key gives nothing away, but it is not for every viewer)."""
    ws = workspace or current()
    now = now_ms()
    periods = (budget_period("day", now), budget_period("month", now))
    with ws.store.read() as conn:
        row = _endpoint(conn, endpoint)
        keys = conn.execute(
            select(api_keys).where(
                api_keys.c.endpoint_id == row.id, api_keys.c.revoked_at.is_(None)
            )
        ).all()
        usage = conn.execute(
            select(api_key_usage).where(
                api_key_usage.c.key_id.in_([k.id for k in keys]),
                api_key_usage.c.period.in_(periods),
            )
        ).all()
    spent = {(u.key_id, u.period): u.input_tokens + u.output_tokens for u in usage}
    found = []
    for key in keys:
        period = budget_period(key.limits.get("budget_period", "month"), now)
        found.append(
            LiveKey(
                key.key_sha256, key.id, key.name, dict(key.limits), period,
                spent.get((key.id, period), 0),
            )
        )  # fmt: skip
    return tuple(found)


@dataclass(frozen=True)
class Usage:
    """What one key spent in one budget period since the last report."""

    key_id: str
    period: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost: float


REPORTS_KEPT_MS = 86_400_000  # how long a report's id is remembered: a day


@operation("POST /endpoints/{endpoint}/keys/usage", idempotent=True)
def add_usage(
    endpoint: str, usage: list[Usage], report_id: str, *, workspace: Workspace | None = None
) -> None:
    """Add a router's report of its keys' spending to their periods, in one transaction (two
    routers adding to the same period both count). ``report_id`` (32 hex characters, new for
    each report) makes it safe to send again: a report already added is not added twice, as
    when its answer was lost on the way back."""
    ws = workspace or current()
    if not isinstance(report_id, str) or not _REPORT_ID.fullmatch(report_id):
        raise InvalidInput(
            f"report_id is 32 lowercase hex characters, not {report_id!r}",
            details={"field": "report_id"},
        )
    for i, u in enumerate(usage):
        numbers = (u.requests, u.input_tokens, u.output_tokens, u.cost)
        if not all(0 <= n < math.inf for n in numbers):
            raise InvalidInput(
                f"usage.{i}: counts and cost are finite and 0 or more",
                details={"field": f"usage.{i}"},
            )
        if not _PERIOD.fullmatch(u.period):
            raise InvalidInput(
                f"usage.{i}.period is a day (2026-12-03) or a month (2026-12), not {u.period!r}",
                details={"field": f"usage.{i}.period"},
            )
    if not usage:
        return
    now = now_ms()
    with ws.store.write() as conn:
        row = _endpoint(conn, endpoint)
        ids = sorted({u.key_id for u in usage})
        known = set(
            conn.execute(
                select(api_keys.c.id).where(
                    api_keys.c.endpoint_id == row.id, api_keys.c.id.in_(ids)
                )
            ).scalars()
        )
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise NotFound(f"endpoint {endpoint!r} has no key {unknown[0]!r}")
        report = {"id": report_id, "endpoint_id": row.id, "at": now}
        if not insert_ignore(conn, api_key_usage_reports, report):
            return  # added before: this is the same report sent again
        conn.execute(
            delete(api_key_usage_reports).where(api_key_usage_reports.c.at < now - REPORTS_KEPT_MS)
        )
        for u in usage:
            upsert(
                conn,
                api_key_usage,
                {
                    "key_id": u.key_id,
                    "period": u.period,
                    "requests": u.requests,
                    "input_tokens": u.input_tokens,
                    "output_tokens": u.output_tokens,
                    "cost": float(u.cost),
                    "updated_at": now,
                },
                ("key_id", "period"),
                add=("requests", "input_tokens", "output_tokens", "cost"),
            )


_PERIOD = re.compile(r"\d{4}-\d{2}(-\d{2})?")
_REPORT_ID = re.compile(r"[0-9a-f]{32}")


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
