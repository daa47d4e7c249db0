"""Reference profiles: what a monitor compares production data with, computed once.

A numerical column is summarised on a fine uniform grid (``GRID_BINS`` bins between the
reference's minimum and maximum) with its count, nulls, min/max, mean/std and quantiles; its
drift bins are ``bins`` groups of neighbouring grid bins, each holding about the same share of
the reference, so that PSI and Jensen-Shannon see deciles-like bins while Wasserstein and KS use
the fine grid. A categorical column is summarised by its value frequencies.

A current window is counted on the *reference's* grid (:func:`profile_current`): values below or
above the reference range fall in grid bins beyond its ends, which the grid's uniform width
places exactly, so no pass over the reference is needed again. Profiles are plain JSON, stored
as artifacts and reused by every monitor run with the same reference and binning
(:func:`stored_profile`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput
from cauce.monitoring import metrics
from cauce.operations import operation
from cauce.validation import INT64_MAX
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


GRID_BINS = 1000
DEFAULT_BINS = 20
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
# Part of every profile key: bump it when what a profile holds changes (2: table models keep
# their answer columns' names), so stored profiles are rebuilt once.
PROFILE_FORMAT = 2
# Grid indices further out than this are clamped: a value 10^12 bins away is "far away" enough.
_FAR = 10**12


@dataclass
class NumericalProfile:
    """A numerical column of the reference."""

    count: int  # finite, non-null values
    nulls: int
    nonfinite: int  # ±inf
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    quantiles: list[float | None]
    lo: float  # the grid starts here ...
    width: float  # ... and its bins are this wide
    grid: list[int]  # counts per grid bin (GRID_BINS of them)
    starts: list[int]  # the grid bin where each drift bin starts (increasing, first 0)
    kind: str = "numerical"

    def drift_counts(self) -> np.ndarray:
        """Reference counts per drift bin."""
        import numpy as np

        return np.add.reduceat(np.asarray(self.grid, dtype=np.int64), self.starts)


@dataclass
class CategoricalProfile:
    """A categorical column of the reference: its values' frequencies."""

    count: int
    nulls: int
    frequencies: dict[str, int]
    kind: str = "categorical"


ColumnProfile = NumericalProfile | CategoricalProfile


@dataclass
class Profile:
    """The reference profile of a table: one entry per monitored column."""

    rows: int
    columns: dict[str, ColumnProfile]
    bins: int = DEFAULT_BINS
    predictions: dict[str, ColumnProfile] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``from_json`` reads it back)."""
        return {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "bins": self.bins,
            "columns": {k: dict(v.__dict__) for k, v in self.columns.items()},
            "predictions": {k: dict(v.__dict__) for k, v in self.predictions.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        """The profile a ``to_json`` dict describes."""

        def column(value: dict[str, Any]) -> ColumnProfile:
            if value["kind"] == "numerical":
                return NumericalProfile(**value)
            return CategoricalProfile(**value)

        return cls(
            rows=int(data["rows"]),
            bins=int(data["bins"]),
            columns={k: column(v) for k, v in data["columns"].items()},
            predictions={k: column(v) for k, v in data.get("predictions", {}).items()},
        )


@dataclass
class CurrentNumerical:
    """A numerical column of a current window, counted on the reference's grid."""

    count: int
    nulls: int
    nonfinite: int
    type_errors: int  # non-null values that are not numbers
    min: float | None
    max: float | None
    mean: float | None
    out_of_bounds: int  # under the reference's minimum or over its maximum
    # (grid index, count) for every grid bin with values, indices outside [0, GRID_BINS) too.
    indices: np.ndarray
    counts: np.ndarray
    kind: str = "numerical"

    def drift_counts(self, reference: NumericalProfile) -> np.ndarray:
        """Counts per drift bin of the reference; values outside its range go to the end bins."""
        import numpy as np

        bins = np.searchsorted(np.asarray(reference.starts), self.indices, side="right") - 1
        bins = np.clip(bins, 0, len(reference.starts) - 1)
        return np.bincount(bins, weights=self.counts, minlength=len(reference.starts))


@dataclass
class CurrentCategorical:
    """A categorical column of a current window."""

    count: int
    nulls: int
    type_errors: int
    frequencies: dict[str, int]
    kind: str = "categorical"


CurrentColumn = CurrentNumerical | CurrentCategorical


def column_kinds(frame: pd.DataFrame) -> dict[str, str]:
    """Each column's kind: text, booleans and small sets of integers are categorical."""
    import pandas as pd

    kinds = {}
    for name in frame.columns:
        series = frame[name]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric and pd.api.types.is_integer_dtype(series) and series.nunique() <= 10:
            numeric = False
        kinds[str(name)] = "numerical" if numeric else "categorical"
    return kinds


def _numbers(series: pd.Series) -> tuple[np.ndarray, int, int]:
    """Float values of a column (NaN for nulls and non-numbers), its nulls and its non-numbers,
    by the type-error rule of :func:`metrics.type_error_rate` (text reading as a number counts
    as that number)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        return values, int(np.isnan(values).sum()), 0
    missing = series.isna().to_numpy()
    values = np.full(len(series), np.nan)
    values[~missing] = metrics.as_numbers(series[~missing])
    nulls = int(missing.sum())
    return values, nulls, int(np.isnan(values).sum()) - nulls


def _numerical(series: pd.Series, bins: int) -> NumericalProfile:
    import numpy as np

    values, nulls, type_errors = _numbers(series)
    nulls += type_errors  # a reference's non-numbers are not part of its distribution
    finite = values[np.isfinite(values)]
    nonfinite = int(len(values) - nulls - len(finite))
    if len(finite) == 0:
        return NumericalProfile(
            0,
            nulls,
            nonfinite,
            None,
            None,
            None,
            None,
            [None] * len(QUANTILES),
            0.0,
            1.0 / GRID_BINS,
            [0] * GRID_BINS,
            [0],
        )
    low, high = float(finite.min()), float(finite.max())
    lo, hi = (low - 0.5, high + 0.5) if low == high else (low, high)
    width = (hi - lo) / GRID_BINS
    grid = np.bincount(_grid_index(finite, lo, width), minlength=GRID_BINS)
    return NumericalProfile(
        count=len(finite),
        nulls=nulls,
        nonfinite=nonfinite,
        min=low,
        max=high,
        mean=float(finite.mean()),
        std=float(finite.std()),  # ddof 0, as normalized_wasserstein expects
        quantiles=[float(q) for q in np.quantile(finite, QUANTILES)],
        lo=lo,
        width=width,
        grid=[int(c) for c in grid],
        starts=_drift_starts(grid, bins),
    )


def _grid_index(finite: np.ndarray, lo: float, width: float) -> np.ndarray:
    """Grid bin of each value of the grid's range; its upper end belongs to the last bin."""
    import numpy as np

    return np.minimum(((finite - lo) / width).astype(np.int64), GRID_BINS - 1)


def _drift_starts(grid: np.ndarray, bins: int) -> list[int]:
    """Grid bins where each of ``bins`` equal-mass groups starts (fewer when mass is lumpy)."""
    import numpy as np

    cumulative = np.cumsum(grid)
    total = cumulative[-1]
    cuts = np.searchsorted(cumulative, total * np.arange(1, bins) / bins, side="left") + 1
    return [0, *sorted({int(c) for c in cuts if 0 < c < len(grid)})]


def _categorical(series: pd.Series) -> CategoricalProfile:
    counts, _ = _frequencies(series)
    return CategoricalProfile(
        count=int(sum(counts.values())), nulls=int(series.isna().sum()), frequencies=counts
    )


def _frequencies(series: pd.Series) -> tuple[dict[str, int], int]:
    """Counts per category, and how many values are no category (by the rule of
    :func:`metrics.type_error_rate`, decided once per distinct value)."""
    import pandas as pd

    counts = series.value_counts(dropna=True, sort=False)
    bad = metrics.category_errors(pd.Series(list(counts.index), dtype=object))
    out: dict[str, int] = {}
    errors = 0
    for (value, count), wrong in zip(counts.items(), bad, strict=True):
        if wrong:
            errors += int(count)
            continue
        key = _category(value)
        out[key] = out.get(key, 0) + int(count)
    return out, errors


def _category(value: Any) -> str:
    """The text a category is known by: ``True``, ``3`` (not ``3.0``), ``monthly``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_profile(
    frame: pd.DataFrame, *, bins: int = DEFAULT_BINS, columns: dict[str, str] | None = None
) -> Profile:
    """Profile a reference table; ``columns`` maps name → numerical | categorical (inferred)."""
    if bins < 2:
        raise InvalidInput(f"bins must be at least 2, not {bins}", details={"field": "bins"})
    kinds = columns if columns is not None else column_kinds(frame)
    missing = [c for c in kinds if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"the reference has no column {', '.join(map(repr, missing))}",
            details={"field": "columns", "missing": missing},
        )
    profiles: dict[str, ColumnProfile] = {}
    for name, kind in kinds.items():
        if kind not in ("numerical", "categorical"):
            raise InvalidInput(
                f"column {name!r}: kind must be numerical or categorical, not {kind!r}",
                details={"field": f"columns.{name}"},
            )
        series = frame[name]
        profiles[name] = _numerical(series, bins) if kind == "numerical" else _categorical(series)
    return Profile(rows=len(frame), columns=profiles, bins=bins)


def profile_current(reference: Profile, frame: pd.DataFrame) -> dict[str, CurrentColumn | None]:
    """Count a current window on the reference's grid; None for a column the window lacks."""
    out: dict[str, CurrentColumn | None] = {}
    for name, ref in reference.columns.items():
        if name not in frame.columns:
            out[name] = None
        elif isinstance(ref, NumericalProfile):
            out[name] = current_numerical(ref, frame[name])
        else:
            out[name] = current_categorical(frame[name])
    return out


def current_numerical(ref: NumericalProfile, series: pd.Series) -> CurrentNumerical:
    """One numerical column of a window, on the reference column's grid."""
    import numpy as np

    values, nulls, type_errors = _numbers(series)
    finite = values[np.isfinite(values)]
    nonfinite = int(len(values) - nulls - type_errors - len(finite))
    if len(finite) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return CurrentNumerical(0, nulls, nonfinite, type_errors, None, None, None, 0, empty, empty)
    # lo + width * GRID_BINS can round below the reference's maximum, which is in the grid
    hi = max(ref.lo + ref.width * GRID_BINS, ref.max if ref.max is not None else -math.inf)
    inside = (finite >= ref.lo) & (finite <= hi)
    grid = np.bincount(_grid_index(finite[inside], ref.lo, ref.width), minlength=GRID_BINS)
    used = np.flatnonzero(grid)
    indices, counts = used.astype(np.int64), grid[used].astype(np.int64)
    if not inside.all():
        beyond = finite[~inside]
        with np.errstate(over="ignore"):  # far beyond the grid: ±inf, clipped to ±_FAR
            outside = np.clip(np.floor((beyond - ref.lo) / ref.width), -_FAR, _FAR)
        # Rounding must not put a value beyond the range back into the range's first/last bin.
        outside = np.where(beyond < ref.lo, np.minimum(outside, -1), np.maximum(outside, GRID_BINS))
        extra, extra_counts = np.unique(outside.astype(np.int64), return_counts=True)
        order = np.argsort(np.concatenate([indices, extra]), kind="stable")
        indices = np.concatenate([indices, extra])[order]
        counts = np.concatenate([counts, extra_counts])[order]
    return CurrentNumerical(
        count=len(finite),
        nulls=nulls,
        nonfinite=nonfinite,
        type_errors=type_errors,
        min=float(finite.min()),
        max=float(finite.max()),
        mean=float(finite.mean()),
        out_of_bounds=_outside(finite, ref.min, ref.max),
        indices=indices,
        counts=counts,
    )


def _outside(finite: np.ndarray, low: float | None, high: float | None) -> int:
    if low is None or high is None:
        return len(finite)
    return int(((finite < low) | (finite > high)).sum())


def current_categorical(series: pd.Series) -> CurrentCategorical:
    """One categorical column of a window: its frequencies and its values that are no category."""
    counts, errors = _frequencies(series)
    return CurrentCategorical(
        count=int(sum(counts.values())),
        nulls=int(series.isna().sum()),
        type_errors=errors,
        frequencies=counts,
    )


def profile_key(reference_hash: str, kinds: dict[str, str], bins: int, extra: str = "") -> str:
    """The key a stored profile is found by: same reference, columns and binning, same key."""
    body = json.dumps(
        {
            "ref": reference_hash,
            "columns": kinds,
            "bins": bins,
            "grid": GRID_BINS,
            "quantiles": QUANTILES,
            "format": PROFILE_FORMAT,
            "extra": extra,
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class StoredProfile:
    """A reference profile the store holds, and its id."""

    id: str
    profile: Profile


def stored_profile(
    ws: Workspace,
    key: str,
    reference: tuple[str, str],
    build: Callable[[], Profile],
) -> tuple[str, Profile, bool]:
    """The stored profile under ``key``, or ``build()`` stored under it; (id, profile, reused).

    ``build`` runs here, on the caller's side, where the reference is read.
    """
    found = reference_profile(key, workspace=ws)
    if found is not None:
        return found.id, found.profile, True
    profile = build()
    return record_profile(key, *reference, profile, workspace=ws), profile, False


@operation("GET /reference-profiles/{key}")
def reference_profile(key: str, *, workspace: Workspace | None = None) -> StoredProfile | None:
    """The reference profile stored under ``key`` (see :func:`profile_key`), if any."""
    from sqlalchemy import select

    from cauce.store.schema import reference_profiles

    ws = workspace or current()
    with ws.store.read() as conn:
        row = conn.execute(
            select(reference_profiles).where(reference_profiles.c.key == key)
        ).first()
    if row is None:
        return None
    return StoredProfile(row.id, Profile.from_json(json.loads(ws.artifacts.read_bytes(row.sha256))))


@operation("POST /reference-profiles")
def record_profile(
    key: str,
    reference_kind: str,
    reference_id: str,
    profile: Profile,
    *,
    workspace: Workspace | None = None,
) -> str:
    """Store the profile of a reference dataset version under ``key``; return its id (the id
    of the one stored meanwhile by another caller, when there is one: it is the same)."""
    from sqlalchemy import select

    from cauce.artifacts.records import record_blob
    from cauce.errors import NotFound
    from cauce.lineage import audit
    from cauce.store import new_id, now_ms
    from cauce.store.schema import dataset_versions, reference_profiles

    ws = workspace or current()
    for field_name, text in (("reference_kind", reference_kind), ("reference_id", reference_id)):
        if not isinstance(text, str):
            raise InvalidInput(f"{field_name} must be a string", details={"field": field_name})
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise InvalidInput(
            f"key must be the 64 hex digits of a profile key, not {key!r}",
            details={"field": "key"},
        )
    if reference_kind != "dataset_version":
        raise InvalidInput(
            f"reference_kind must be 'dataset_version', not {reference_kind!r}",
            details={"field": "reference_kind"},
        )
    if not 0 <= profile.rows <= INT64_MAX:
        raise InvalidInput(
            "profile.rows must be 0 or more, in 64 bits", details={"field": "profile.rows"}
        )
    rp = reference_profiles.c
    blob = ws.artifacts.put_bytes(
        json.dumps(profile.to_json(), separators=(",", ":")).encode(), media_type="application/json"
    )
    with ws.store.write() as conn:
        row = conn.execute(select(rp.id).where(rp.key == key)).first()
        if row is not None:  # built meanwhile by another process: theirs is the same
            return str(row.id)
        known = dataset_versions.c.id == reference_id
        if conn.execute(select(dataset_versions.c.id).where(known)).first() is None:
            raise NotFound(
                f"dataset version {reference_id!r} does not exist",
                details={"field": "reference_id"},
            )
        profile_id = new_id()
        record_blob(conn, blob)
        conn.execute(
            reference_profiles.insert().values(
                id=profile_id,
                key=key,
                reference_kind=reference_kind,
                reference_id=reference_id,
                row_count=profile.rows,
                sha256=blob.sha256,
                created_at=now_ms(),
            )
        )
        audit.record(
            conn,
            ws.user,
            "reference_profile.create",
            "reference_profile",
            profile_id,
            after={
                "reference": [reference_kind, reference_id],
                "rows": profile.rows,
                "columns": sorted(profile.columns),
            },
        )
    return profile_id
