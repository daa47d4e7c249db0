"""Artifact bookkeeping: the ``artifacts`` table's row for each stored blob.

Every layer that stores a blob and refers to it from the metadata store (run files, dataset
versions, reference profiles) records it here, in its own transaction, so the table lists each
blob once whoever stored it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cauce.store import insert_ignore, now_ms
from cauce.store.schema import artifacts

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from cauce.artifacts import Blob


def record_blob(conn: Connection, blob: Blob) -> None:
    """Record a stored blob in the ``artifacts`` table (once), inside the caller's transaction."""
    insert_ignore(
        conn,
        artifacts,
        {
            "sha256": blob.sha256,
            "size": blob.size,
            "uri": blob.uri,
            "media_type": blob.media_type,
            "created_at": now_ms(),
        },
    )
