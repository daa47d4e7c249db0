"""API tokens of the team server: created, listed, granted roles and revoked; only their sha256
is stored.

A token is shown once, when it is created: ``ct-`` and 43 URL-safe characters (256 random bits,
made and hashed as the GenAI endpoints' API keys are, so a plain sha256 is the right hash at
rest). It authenticates as its ``name``, the principal recorded in audit events, with a role per
workspace (``viewer``, ``editor`` or ``admin``; workspace ``*`` is every workspace). Several
tokens may carry one name, so that a new one can be handed out before the old one is revoked.

Tokens live in the server's home store; every create, grant and revoke is an audit event that
holds the token's id, name, prefix and roles, never the token or its hash.

Through a server (``CAUCE_SERVER_URL``) the same functions call its ``/api/v1/tokens`` routes,
as the token in ``CAUCE_SERVER_TOKEN``. There, and whenever a ``principal`` is given, who may
manage what is :func:`~cauce.server.roles.may_manage`'s rule: admin of every workspace the
token holds (or is given) a role in; a server admin manages every token. A workspace admin sees
only the tokens it may manage, and may not take a name that a token it may not manage carries.

Example::

    info, token = create_token("ci-bot", "editor", workspace_name="default", expires="30d")
    grant_role("ci-bot", "viewer", workspace_name="reports")
    revoke_token("ci-bot")
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from cauce.config import duration_ms
from cauce.errors import AlreadyExists, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.server.roles import (
    Principal,
    check_role,
    check_workspace_name,
    may_manage,
    require_admin_somewhere,
    require_manage,
)
from cauce.serving.keys import hash_key, new_key, shown_prefix
from cauce.store import new_id, now_ms
from cauce.store.schema import api_token_roles, api_tokens
from cauce.validation import check_name
from cauce.workspace import Workspace, current

__all__ = [
    "PREFIX",
    "TokenInfo",
    "any_tokens",
    "create_token",
    "find_token",
    "grant_role",
    "hash_token",
    "list_tokens",
    "revoke_token",
]

PREFIX = "ct-"
MAX_LIFETIME_MS = 100 * 365 * 86_400_000  # beyond it, a lifetime is a typo (and overflows)


@dataclass(frozen=True)
class TokenInfo:
    """A token as the store knows it: never the token itself, nor its hash."""

    id: str
    name: str
    prefix: str
    roles: dict[str, str]
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    user: str  # who created it

    def state(self, at_ms: int | None = None) -> str:
        """``active``, ``expired`` or ``revoked`` at ``at_ms`` (default: now)."""
        if self.revoked_at is not None:
            return "revoked"
        if (
            self.expires_at is not None
            and (now_ms() if at_ms is None else at_ms) >= self.expires_at
        ):
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view, with the token's state now."""
        return {**self.__dict__, "roles": dict(self.roles), "state": self.state()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TokenInfo:
        """The token :meth:`to_dict` wrote (a server's answer)."""
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


def hash_token(token: str) -> str:
    """The sha256 a token is stored as."""
    return hash_key(token)


def create_token(
    name: str,
    role: str,
    *,
    workspace_name: str = "default",
    expires: dt.timedelta | str | float | None = None,
    home: Workspace | None = None,
    actor: str | None = None,
    principal: Principal | None = None,
) -> tuple[TokenInfo, str]:
    """A new token for principal ``name`` with ``role`` in ``workspace_name``: what is stored,
    and the token itself (shown only now).

    ``expires`` is a lifetime (a timedelta, seconds, or ``30d``, ``12h``...); None never expires.
    ``actor`` is who is recorded in the audit event (default: the workspace's user);
    ``principal``, who asks (see the module's docstring; None: the server's own machine).
    """
    ws = home or current()
    if ws.remote:
        if isinstance(expires, dt.timedelta):
            expires = expires.total_seconds()
        body = {"name": name, "role": role, "workspace": workspace_name, "expires": expires}
        answer = _through_server(ws, "POST", "/tokens", body)
        return TokenInfo.from_dict(answer), str(answer["token"])
    if principal is not None:
        require_admin_somewhere(principal)
    if isinstance(name, str) and name.startswith(PREFIX):  # before an error could repeat it
        raise InvalidInput(
            f"a token name may not start with {PREFIX!r}: tokens themselves do",
            details={"field": "name"},
        )
    _field("name", check_name, name, "token name")
    check_role(role)
    _field("workspace", check_workspace_name, workspace_name)
    lifetime = _lifetime(expires)
    if principal is not None:
        require_manage(principal, {workspace_name: role})
    token = new_key(PREFIX)
    now = now_ms()
    values = {
        "id": new_id(),
        "name": name,
        "prefix": shown_prefix(token, PREFIX),
        "token_sha256": hash_token(token),
        "created_at": now,
        "expires_at": None if lifetime is None else now + lifetime,
        "revoked_at": None,
        "user": actor or ws.user,
    }
    roles = {workspace_name: role}
    with ws.store.write() as conn:
        if principal is not None and not principal.is_server_admin:
            _check_name_free(conn, name, principal)
        conn.execute(api_tokens.insert().values(**values))
        conn.execute(
            api_token_roles.insert().values(
                token_id=values["id"], workspace=workspace_name, role=role
            )
        )
        info = _info(values, roles)
        audit.record(conn, actor or ws.user, "token.create", "token", info.id, after=_shown(info))
    return info, token


def list_tokens(
    *, home: Workspace | None = None, principal: Principal | None = None
) -> list[TokenInfo]:
    """Every token, revoked and expired ones included, by name then age; those ``principal``
    may manage when it is given."""
    ws = home or current()
    if ws.remote:
        return [TokenInfo.from_dict(t) for t in _through_server(ws, "GET", "/tokens")["tokens"]]
    if principal is not None:
        require_admin_somewhere(principal)
    with ws.store.read() as conn:
        rows = conn.execute(
            select(api_tokens).order_by(api_tokens.c.name, api_tokens.c.created_at)
        ).all()
        roles = _roles(conn, [r.id for r in rows])
    found = [_info(r._asdict(), roles.get(r.id, {})) for r in rows]
    return [t for t in found if principal is None or may_manage(principal, t.roles)]


def revoke_token(
    name_or_id: str,
    *,
    home: Workspace | None = None,
    actor: str | None = None,
    principal: Principal | None = None,
) -> list[TokenInfo]:
    """Revoke one token (by id, or the token itself) or every live token of a principal (by
    name); what was revoked.

    A running server refuses a revoked token within its cache time (seconds). Revoking a token
    that already is revoked changes nothing; its row stays, for the audit trail. With a
    ``principal``, nothing is revoked unless it may manage every token named.
    """
    ws = home or current()
    if ws.remote:
        if name_or_id.startswith(PREFIX):  # a secret goes in a body, never in a URL
            answer = _through_server(ws, "POST", "/tokens/revoke", {"token": name_or_id})
        else:
            answer = _through_server(ws, "POST", f"/tokens/{quote(name_or_id, safe='')}/revoke")
        return [TokenInfo.from_dict(t) for t in answer["tokens"]]
    if principal is not None:
        require_admin_somewhere(principal)
    now = now_ms()
    with ws.store.write() as conn:
        rows = _select(conn, name_or_id)
        live = [r for r in rows if r.revoked_at is None]
        one = len(rows) == 1 and (rows[0].id == name_or_id or name_or_id.startswith(PREFIX))
        if not live and not one:
            raise NotFound(
                f"no live token {_named(name_or_id)}", hint="cauce tokens list shows them"
            )
        roles = _roles(conn, [r.id for r in live or rows])
        if principal is not None:
            for row in live or rows:
                require_manage(principal, roles.get(row.id, {}))
        if not live:  # that very token, revoked before: nothing to do
            return [_info(rows[0]._asdict(), roles.get(rows[0].id, {}))]
        ids = [r.id for r in live]
        conn.execute(api_tokens.update().where(api_tokens.c.id.in_(ids)).values(revoked_at=now))
        revoked = [_info({**r._asdict(), "revoked_at": now}, roles.get(r.id, {})) for r in live]
        for info in revoked:
            audit.record(
                conn,
                actor or ws.user,
                "token.revoke",
                "token",
                info.id,
                before={"revoked_at": None},
                after={**_shown(info), "revoked_at": now},
            )
    return revoked


def grant_role(
    name_or_id: str,
    role: str | None,
    *,
    workspace_name: str,
    home: Workspace | None = None,
    actor: str | None = None,
    principal: Principal | None = None,
) -> list[TokenInfo]:
    """Give one token (by id) or every live token of a principal (by name) ``role`` in
    ``workspace_name``, replacing the role it held there; ``role=None`` takes it away. With a
    ``principal``, nothing changes unless it may manage every token named, given that role."""
    ws = home or current()
    if ws.remote:
        body = {"role": role, "workspace": workspace_name}
        path = f"/tokens/{quote(name_or_id, safe='')}/grants"
        return [TokenInfo.from_dict(t) for t in _through_server(ws, "POST", path, body)["tokens"]]
    if principal is not None:
        require_admin_somewhere(principal)
    if role is not None:
        check_role(role)
    _field("workspace", check_workspace_name, workspace_name)
    with ws.store.write() as conn:
        live = [r for r in _select(conn, name_or_id) if r.revoked_at is None]
        if not live:
            raise NotFound(
                f"no live token {_named(name_or_id)}", hint="cauce tokens list shows them"
            )
        ids = [r.id for r in live]
        before = _roles(conn, ids)
        if principal is not None:
            for row in live:  # the role's value does not matter here, only where it is held
                require_manage(principal, {**before.get(row.id, {}), workspace_name: "viewer"})
        changed = []
        for row in live:
            old = before.get(row.id, {})
            new = {k: v for k, v in old.items() if k != workspace_name}
            if role is not None:
                new[workspace_name] = role
            if new != old:
                conn.execute(
                    api_token_roles.delete().where(
                        api_token_roles.c.token_id == row.id,
                        api_token_roles.c.workspace == workspace_name,
                    )
                )
                if role is not None:
                    conn.execute(
                        api_token_roles.insert().values(
                            token_id=row.id, workspace=workspace_name, role=role
                        )
                    )
                audit.record(
                    conn,
                    actor or ws.user,
                    "token.grant",
                    "token",
                    row.id,
                    before={"roles": old},
                    after={"roles": new},
                )
            changed.append(_info(row._asdict(), new))
    return changed


def find_token(token_sha256: str, *, home: Workspace) -> TokenInfo | None:
    """The token stored with this sha256, revoked or expired ones included; None if none."""
    with home.store.read() as conn:
        row = conn.execute(
            select(api_tokens).where(api_tokens.c.token_sha256 == token_sha256)
        ).first()
        if row is None:
            return None
        return _info(row._asdict(), _roles(conn, [row.id]).get(row.id, {}))


def any_tokens(*, home: Workspace) -> bool:
    """Whether a token was ever created here (a revoked or expired one counts: once a server has
    had a token, authentication stays on)."""
    with home.store.read() as conn:
        return bool(conn.execute(select(func.count()).select_from(api_tokens)).scalar_one())


def _lifetime(expires: dt.timedelta | str | float | None) -> int | None:
    """A token's lifetime in milliseconds, or None for one that does not expire."""
    if expires is None:
        return None
    if isinstance(expires, dt.timedelta):
        ms = int(expires.total_seconds() * 1000)
    else:
        try:
            ms = duration_ms(expires)
        except ValueError as exc:
            raise InvalidInput(f"expires: {exc}", details={"field": "expires"}) from None
    if ms <= 0:
        raise InvalidInput("expires must be a positive duration", details={"field": "expires"})
    if ms > MAX_LIFETIME_MS:
        raise InvalidInput("expires must be at most 100 years", details={"field": "expires"})
    return ms


def _field(field: str, check: Callable[..., str], value: Any, *args: Any) -> str:
    """``check(value, *args)``, its InvalidInput naming ``field``."""
    try:
        return check(value, *args)
    except InvalidInput as exc:
        exc.details = {**exc.details, "field": field}
        raise


def _check_name_free(conn: Any, name: str, principal: Principal) -> None:
    """AlreadyExists unless ``principal`` may manage every token already called ``name``: a
    workspace admin must not hand out tokens that act (and are audited) as someone else."""
    ids = [r.id for r in conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name))]
    held = _roles(conn, ids)
    if not all(may_manage(principal, held.get(i, {})) for i in ids):
        raise AlreadyExists(
            f"token name {name!r} is taken by a token with roles beyond the workspaces "
            f"{principal.name} administers",
            hint="choose another name, or ask a server admin",
            details={"field": "name"},
        )


def _through_server(ws: Workspace, method: str, path: str, body: Any = None) -> Any:
    """The JSON answer of a token route of the server ``ws`` is on (its home: tokens live
    there, whichever workspace ``ws`` addresses)."""
    options = {} if body is None else {"json": body}
    response = ws.server.request(method, path, idempotent=method == "GET", home=True, **options)
    return response.json()


def _select(conn: Any, name_or_id: str) -> list[Any]:
    """The tokens ``name_or_id`` names: the token itself (a leaked one, pasted), the one with
    that id, else all with that name."""
    if name_or_id.startswith(PREFIX):
        column, value = api_tokens.c.token_sha256, hash_token(name_or_id)
        return list(conn.execute(select(api_tokens).where(column == value)).all())
    by_id = conn.execute(select(api_tokens).where(api_tokens.c.id == name_or_id)).all()
    if by_id:
        return list(by_id)
    return list(conn.execute(select(api_tokens).where(api_tokens.c.name == name_or_id)).all())


def _named(name_or_id: str) -> str:
    """How an error names what was asked for: never a token itself, which is a secret."""
    if name_or_id.startswith(PREFIX):
        return "is the one given"
    return f"is named or has id {name_or_id!r}"


def _roles(conn: Any, ids: list[str]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    if not ids:
        return found
    rows = conn.execute(select(api_token_roles).where(api_token_roles.c.token_id.in_(ids)))
    for row in rows:
        found.setdefault(row.token_id, {})[row.workspace] = row.role
    return found


def _info(values: Mapping[str, Any], roles: Mapping[str, str]) -> TokenInfo:
    return TokenInfo(
        id=values["id"],
        name=values["name"],
        prefix=values["prefix"],
        roles=dict(sorted(roles.items())),
        created_at=values["created_at"],
        expires_at=values["expires_at"],
        revoked_at=values["revoked_at"],
        user=values["user"],
    )


def _shown(info: TokenInfo) -> dict[str, Any]:
    """What an audit event keeps of a token: never the token, nor its hash."""
    return {
        "id": info.id,
        "name": info.name,
        "prefix": info.prefix,
        "roles": dict(info.roles),
        "expires_at": info.expires_at,
        "user": info.user,
    }
