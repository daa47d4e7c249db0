"""What changed between two dataset versions: their schemas and their column statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cauce.data.assets import get_profile, resolve_version, schema_changes
from cauce.workspace import Workspace, current

# Statistics compared per common column, from each version's profile.
STATISTICS = ("null_rate", "mean", "std", "distinct_count")


@dataclass(frozen=True)
class DatasetDiff:
    """Schema and statistics changes from one version (``before``) to another (``after``)."""

    before: str
    after: str
    schema: dict[str, Any]
    row_count: dict[str, Any]
    columns: dict[str, dict[str, dict[str, Any]]]

    @property
    def schema_changed(self) -> bool:
        """Whether a column was added, removed or changed type."""
        return any(self.schema.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {**asdict(self), "schema_changed": self.schema_changed}


def diff(before: Any, after: Any, *, workspace: Workspace | None = None) -> DatasetDiff:
    """Compare two versions (``DatasetVersion`` or ``name@version``); ``after`` minus ``before``.

    Example:
        cauce.data.diff("orders@1", "orders@2").schema["added"]
    """
    ws = workspace or current()
    old = resolve_version(before, workspace=ws)
    new = resolve_version(after, workspace=ws)
    old_profile = get_profile(old, workspace=ws)["columns"]
    new_profile = get_profile(new, workspace=ws)["columns"]
    columns: dict[str, dict[str, dict[str, Any]]] = {}
    for name in old.schema:
        if name in new.schema:
            columns[name] = {
                stat: _change(old_profile[name].get(stat), new_profile[name].get(stat))
                for stat in STATISTICS
            }
    return DatasetDiff(
        before=old.ref,
        after=new.ref,
        schema=schema_changes(old.schema, new.schema),
        row_count=_change(old.row_count, new.row_count),
        columns=columns,
    )


def _change(old: Any, new: Any) -> dict[str, Any]:
    """``{"from", "to", "change"}``; change is ``to - from`` when both are finite numbers."""
    numeric = (
        isinstance(old, (int, float))
        and isinstance(new, (int, float))
        and not isinstance(old, bool)
        and not isinstance(new, bool)
    )
    return {"from": old, "to": new, "change": new - old if numeric else None}
