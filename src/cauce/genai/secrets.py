"""Secrets at rest: Fernet encryption (AES-128-CBC + HMAC-SHA256) from ``cryptography``.

The key comes from ``CAUCE_SECRET_KEY`` (one Fernet key, or several separated by commas to
rotate: the first encrypts, any decrypts), else from ``.cauce/secret.key`` in the workspace,
created on first use with mode 0600. A workspace whose metadata store is shared (PostgreSQL)
needs the same key on every machine: set ``CAUCE_SECRET_KEY``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cauce.errors import InvalidInput

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

    from cauce.workspace import Workspace

KEY_FILE = "secret.key"
_NEW_KEY_HINT = (
    'make one with: python -c "from cryptography.fernet import Fernet; '
    'print(Fernet.generate_key().decode())"'
)


def encrypt(workspace: Workspace, secret: str) -> str:
    """The secret as a Fernet token (text), under the workspace's current key."""
    return _keys(workspace).encrypt(secret.encode()).decode()


def decrypt(workspace: Workspace, token: str, what: str) -> str:
    """The secret a Fernet token holds; ``what`` names it in the error when no key fits."""
    from cryptography.fernet import InvalidToken

    try:
        return _keys(workspace).decrypt(token.encode()).decode()
    except InvalidToken:
        raise InvalidInput(
            f"cannot decrypt the secret of {what}: it was encrypted with another key",
            hint="set CAUCE_SECRET_KEY to the key it was stored with (keys separated by commas "
            "are all tried), or apply the spec again to store it under this key",
        ) from None


def key_file(workspace: Workspace) -> Path:
    """Where the workspace keeps its key when ``CAUCE_SECRET_KEY`` is not set."""
    return workspace.settings.state_dir / KEY_FILE


def _keys(workspace: Workspace) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    given = os.environ.get("CAUCE_SECRET_KEY", "").strip()
    texts = [k.strip() for k in given.split(",") if k.strip()] if given else [_file_key(workspace)]
    keys = []
    for text in texts:
        try:
            keys.append(Fernet(text.encode()))
        except ValueError:
            where = "CAUCE_SECRET_KEY" if given else str(key_file(workspace))
            raise InvalidInput(
                f"{where} does not hold a Fernet key (32 url-safe base64-encoded bytes)",
                hint=_NEW_KEY_HINT,
            ) from None
    return MultiFernet(keys)


def _file_key(workspace: Workspace) -> str:
    import tempfile

    from cryptography.fernet import Fernet

    path = key_file(workspace)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole, then linked into place: a concurrent first use reads one complete key.
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(Fernet.generate_key().decode())
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidInput(f"{path} can be read by other users (mode {mode:o}): chmod 600 it")
    return path.read_text().strip()
