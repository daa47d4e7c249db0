"""Who is asking (a principal) and what their role allows, per workspace.

Roles are ordered ``viewer`` < ``editor`` < ``admin``: a viewer reads, an editor also writes, an
admin also manages tokens. A principal holds at most one role per workspace; the workspace
``*`` stands for every workspace, so ``admin`` of ``*`` is a server admin. Where a principal
holds a role in both ``*`` and a named workspace, the higher one counts there.

Example::

    alice = Principal("alice", via="token", roles={"default": "editor", "*": "viewer"})
    alice.role_in("default")  # "editor"
    alice.role_in("other")  # "viewer"
    require(alice, "default", "admin")  # raises Forbidden
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cauce.errors import Forbidden, InvalidInput
from cauce.validation import check_name

__all__ = [
    "ALL_WORKSPACES",
    "ANONYMOUS",
    "ROLES",
    "Principal",
    "check_role",
    "check_workspace_name",
    "may_manage",
    "require",
    "require_admin_somewhere",
    "require_manage",
]

ROLES = ("viewer", "editor", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
ALL_WORKSPACES = "*"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a name (recorded in audit events), how it proved who it is,
    and its role per workspace."""

    name: str
    via: Literal["token", "oidc", "anonymous"]
    roles: dict[str, str] = field(default_factory=dict)
    token_id: str | None = None  # the API token it came with, when ``via`` is "token"

    def role_in(self, workspace_name: str) -> str | None:
        """The role held in ``workspace_name`` (or through ``*``), or None."""
        held = [self.roles.get(workspace_name), self.roles.get(ALL_WORKSPACES)]
        ranked = [r for r in held if r in RANK]
        return max(ranked, key=RANK.__getitem__) if ranked else None

    @property
    def is_server_admin(self) -> bool:
        """Whether this principal is admin of every workspace (``admin`` of ``*``)."""
        return self.roles.get(ALL_WORKSPACES) == "admin"


# Who a request is when authentication is off: a loopback server with no tokens, a laptop.
ANONYMOUS = Principal("anonymous", via="anonymous", roles={ALL_WORKSPACES: "admin"})


def check_role(role: str) -> str:
    """A role name: viewer, editor or admin."""
    if not isinstance(role, str) or role not in RANK:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}, not {role!r}", details={"field": "role"}
        )
    return role


def check_workspace_name(name: str) -> str:
    """A workspace name a role is held in: an entity name, or ``*`` for every workspace."""
    return name if name == ALL_WORKSPACES else check_name(name, "workspace name")


def require(principal: Principal, workspace_name: str, role: str) -> None:
    """Raise Forbidden unless ``principal`` holds ``role`` or higher in ``workspace_name``."""
    check_role(role)
    held = principal.role_in(workspace_name)
    if held is not None and RANK[held] >= RANK[role]:
        return
    where = (
        "every workspace" if workspace_name == ALL_WORKSPACES else f"workspace {workspace_name!r}"
    )
    raise Forbidden(
        f"{principal.name} is {_a(held)} in {where}; this needs {role}",
        hint="an admin grants roles with cauce tokens grant",
        details={"workspace": workspace_name, "role": held, "needed": role},
    )


def may_manage(principal: Principal, roles: Mapping[str, str]) -> bool:
    """Whether ``principal`` may create, grant or revoke a token holding ``roles``: it must be
    admin of every workspace named there (a role in ``*`` needs a server admin); a token with
    no role at all needs a server admin."""
    if not roles:
        return principal.is_server_admin
    return all(principal.role_in(ws) == "admin" for ws in roles)


def require_manage(principal: Principal, roles: Mapping[str, str]) -> None:
    """Raise Forbidden unless ``principal`` may manage a token holding ``roles``."""
    if not may_manage(principal, roles):
        named = ", ".join(sorted(roles)) or ALL_WORKSPACES
        raise Forbidden(
            f"{principal.name} may not manage tokens with roles in {named}: "
            "that needs admin of each of those workspaces",
            details={"workspaces": sorted(roles)},
        )


def require_admin_somewhere(principal: Principal) -> None:
    """Raise Forbidden unless ``principal`` is admin of at least one workspace: the least that
    managing tokens needs."""
    if "admin" not in principal.roles.values():
        raise Forbidden(
            f"{principal.name} is admin of no workspace; managing tokens needs admin of one",
            hint="a server admin grants roles with cauce tokens grant",
            details={"needed": "admin"},
        )


def _a(role: str | None) -> str:
    if role is None:
        return "no role"
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"
