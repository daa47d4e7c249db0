"""What a validation reads: blobs verified against their sha256, and exact ``unique`` counts.

A local artifact store's blob is read in place while a thread hashes it; an S3 one is copied
and verified first. Either way a blob changed after it was registered fails the validation
with IntegrityError and nothing is stored. ``unique`` finds repeats by sorting 64-bit hashes:
its counts must stay exact when hashes collide, which the tests force by shadowing DuckDB's
``hash`` with a macro that answers a handful of values.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cauce
from cauce.data import checks
from cauce.data.suites import CheckSuite
from cauce.errors import IntegrityError, NotFound
from cauce.workspace import Workspace
from remote import server_side
from stored import row_count


def suite(*entries: dict[str, Any]) -> CheckSuite:
    return CheckSuite.model_validate({"kind": "CheckSuite", "name": "s", "checks": list(entries)})


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# -- verified reads, on a local folder and on S3 ------------------------------------------------


ORDERS = pd.DataFrame({"id": [1, 2, 2, 4], "code": ["A1", "B2", "xx", None]})
CHECKS = suite(
    {"unique": {"column": "id"}},
    {"regex": {"column": "code", "pattern": "[A-Z][0-9]"}},
    {"relationships": {"column": "id", "to": "known", "field": "id"}},
)


def test_validate_reads_the_stored_version(artifacts_ws: Workspace) -> None:
    version = cauce.data.register("orders", ORDERS)
    cauce.data.register("known", pd.DataFrame({"id": [1, 2, 3]}))
    result = cauce.data.validate(version.ref, CHECKS, raise_on_failure=False)
    assert [c.failing for c in result.checks] == [2, 1, 1]
    assert row_count(server_side(artifacts_ws), "check_results") == 1


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(parquet_bytes(ORDERS.assign(id=[1, 2, 3, 4])), id="other valid parquet"),
        pytest.param(b"PAR1 not parquet at all", id="garbage"),
    ],
)
def test_a_changed_blob_fails_and_stores_nothing(
    artifacts_ws: Workspace, overwrite_blob: Callable[[str, bytes], None], forged: bytes
) -> None:
    version = cauce.data.register("orders", ORDERS)
    cauce.data.register("known", pd.DataFrame({"id": [1, 2, 3]}))
    overwrite_blob(version.sha256, forged)
    # Readable or not, the changed file is reported as corrupted: never a verdict on it.
    with pytest.raises(IntegrityError, match=version.sha256):
        cauce.data.validate(version.ref, CHECKS, raise_on_failure=False)
    assert row_count(server_side(artifacts_ws), "check_results") == 0


def test_a_changed_reference_blob_fails(
    artifacts_ws: Workspace, overwrite_blob: Callable[[str, bytes], None]
) -> None:
    version = cauce.data.register("orders", ORDERS)
    known = cauce.data.register("known", pd.DataFrame({"id": [1, 2, 3]}))
    overwrite_blob(known.sha256, parquet_bytes(pd.DataFrame({"id": [1, 2, 3, 4]})))
    with pytest.raises(IntegrityError, match=known.sha256):
        cauce.data.validate(version.ref, CHECKS, raise_on_failure=False)
    assert row_count(server_side(artifacts_ws), "check_results") == 0


def test_a_missing_blob_is_not_found(workspace: Workspace) -> None:
    version = cauce.data.register("orders", ORDERS)
    Path(server_side(workspace).artifacts.path_of(version.sha256)).unlink()
    with pytest.raises(NotFound, match=version.sha256):
        cauce.data.validate(version.ref, CHECKS, raise_on_failure=False)
    assert row_count(server_side(workspace), "check_results") == 0


def test_a_local_blob_is_read_in_place_and_nothing_else(
    local_workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = local_workspace
    version = cauce.data.register("orders", ORDERS)
    known = cauce.data.register("known", pd.DataFrame({"id": [1, 2, 3]}))
    copies: list[str] = []
    monkeypatch.setattr(
        workspace.artifacts, "get_file", lambda sha, local: copies.append(sha) or local
    )
    allowed: list[list[str]] = []
    real = checks._sandbox

    def spy(path: Path, references: dict[int, Path]) -> Any:
        con = real(path, references)
        allowed.append(sorted(con.execute("SELECT current_setting('allowed_paths')").fetchone()[0]))
        return con

    monkeypatch.setattr(checks, "_sandbox", spy)
    result = cauce.data.validate(version.ref, CHECKS, raise_on_failure=False)
    assert [c.failing for c in result.checks] == [2, 1, 1]
    assert copies == []
    blobs = [workspace.artifacts.path_of(s) for s in (version.sha256, known.sha256)]
    assert allowed == [sorted(str(Path(b).resolve()) for b in blobs)]


# -- unique: exact whatever the hashes --------------------------------------------------------


@pytest.fixture
def colliding_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DuckDB's ``hash`` answers one of three values in every validation's sandbox."""
    real = checks._sandbox

    def sandbox(path: Path, references: dict[int, Path]) -> Any:
        con = real(path, references)
        con.execute("CREATE TEMP MACRO hash(x) AS (length(CAST(x AS VARCHAR)) % 3)::UBIGINT")
        return con

    monkeypatch.setattr(checks, "_sandbox", sandbox)
    yield


def test_unique_is_exact_when_hashes_collide(
    any_workspace: Workspace, colliding_hashes: None
) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "s": [f"v{n}" for n in rng.integers(0, 400, 300)] + [None] * 5,
            "f": [*rng.normal(size=295).round(1), 0.0, -0.0, np.nan, np.nan, 7.5] + [None] * 5,
            "u": [f"id{n}" for n in range(305)],
        }
    )
    version = cauce.data.register("collide", frame)
    rules = suite(*({"unique": {"column": c}} for c in frame.columns))
    result = cauce.data.validate(version.ref, rules, raise_on_failure=False)
    for check in result.checks:
        column = frame[check.column]
        # DuckDB groups NaN with NaN and 0.0 with -0.0, as pandas' duplicated does
        repeated = column.notna() & column.duplicated(keep=False)
        assert check.failing == int(repeated.sum()), check.name
        assert [r["_row"] for r in check.sample] == list(np.flatnonzero(repeated))[:10]
    assert result.checks[2].failing == 0


@given(values=st.lists(st.one_of(st.none(), st.text("ab", max_size=3)), max_size=40))
@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_unique_counts_match_pandas_with_colliding_hashes(
    workspace: Workspace, colliding_hashes: None, values: list[str | None]
) -> None:
    frame = pd.DataFrame({"x": pd.Series(values, dtype="object")})
    version = cauce.data.register(f"h{next(_counter)}", frame)
    result = cauce.data.validate(
        version.ref, suite({"unique": {"column": "x"}}), raise_on_failure=False
    )
    x = frame["x"]
    assert result.checks[0].failing == int((x.notna() & x.duplicated(keep=False)).sum())


_counter = itertools.count()
