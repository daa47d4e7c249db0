"""``cauce tokens``: API tokens of the team server, in the server's home workspace: through
the server when CAUCE_SERVER_URL is set, else in this workspace."""

from __future__ import annotations

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when

app = typer.Typer(
    help=(
        "API tokens of the team server: create (shown once), list, grant roles, revoke. With "
        "CAUCE_SERVER_URL set they go through the server, as the admin whose token is "
        "CAUCE_SERVER_TOKEN; without it, to this workspace (run them on the server's machine)."
    ),
    no_args_is_help=True,
)

ROLE_HELP = "viewer (reads), editor (reads and writes) or admin (also manages tokens)."
WORKSPACE_HELP = (
    "Workspace the role is held in; '*' is every workspace (admin of '*': server admin)."
)


def _roles(roles: dict[str, str]) -> str:
    return ", ".join(f"{role} in {ws}" for ws, role in roles.items()) or "no role"


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Who the token is for: the principal audit events name."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    workspace: str = typer.Option("default", "--workspace", help=WORKSPACE_HELP),
    expires: str | None = typer.Option(
        None, "--expires", help="Lifetime: 30d, 12h, 90m...; default: never expires."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Create a token; it is printed once, and only its sha256 is kept.

    Through a server this needs admin of the workspace (admin of '*' for a role in '*').

    Example:
        cauce tokens create ci-bot --role editor --workspace default --expires 30d
    """
    from cauce.server.tokens import create_token

    info, token = create_token(name, role, workspace_name=workspace, expires=expires)
    if as_json:
        print_json({**info.to_dict(), "token": token})
        return
    until = f", expires {when(info.expires_at)}" if info.expires_at else ""
    console.print(f"token {info.prefix}… for {name} ({_roles(info.roles)}{until}):", markup=False)
    console.print(token, markup=False, highlight=False)
    console.print("Keep it now: it will not be shown again.", markup=False)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List tokens (never the tokens themselves): prefix, roles, state, expiry.

    Through a server, the tokens the caller may manage: all of them for a server admin.

    Example:
        cauce tokens list
    """
    from cauce.server.tokens import list_tokens

    found = list_tokens()
    if as_json:
        print_json([t.to_dict() for t in found])
        return
    table(
        "API tokens",
        ["Name", "ID", "Prefix", "Roles", "State", "Created", "Expires", "Created by"],
        [
            [
                t.name,
                t.id,
                t.prefix + "…",
                _roles(t.roles),
                t.state(),
                when(t.created_at),
                when(t.expires_at) if t.expires_at else "never",
                t.user,
            ]
            for t in found
        ],
        empty="No tokens yet: cauce tokens create NAME --role viewer.",
    )


@app.command("grant")
def grant(
    name_or_id: str = typer.Argument(..., help="Token id, or a name: all its live tokens."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP + " 'none' takes the role away."),
    workspace: str = typer.Option(..., "--workspace", help=WORKSPACE_HELP),
) -> None:
    """Give tokens a role in a workspace, replacing the one they held there.

    Through a server this needs admin of every workspace the tokens hold a role in, and of this
    one.

    Example:
        cauce tokens grant ci-bot --role viewer --workspace reports
    """
    from cauce.server.tokens import grant_role

    changed = grant_role(name_or_id, None if role == "none" else role, workspace_name=workspace)
    for info in changed:
        console.print(f"token {info.prefix}… of {info.name}: {_roles(info.roles)}", markup=False)


@app.command("revoke")
def revoke(
    name_or_id: str = typer.Argument(
        ..., help="Token id, the token itself, or a name: all its live tokens."
    ),
) -> None:
    """Revoke tokens: a running server refuses them within seconds. Their record stays.

    Through a server this needs admin of every workspace the tokens hold a role in.

    Example:
        cauce tokens revoke ci-bot
    """
    from cauce.server.tokens import revoke_token

    for info in revoke_token(name_or_id):
        console.print(f"revoked token {info.prefix}… of {info.name} ({info.id})", markup=False)
