"""Bad data input: a clear CauceError naming the cause, and nothing half-registered."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import cauce
from cauce.errors import BackendError, CauceError, Conflict, InvalidInput, NotFound
from cauce.workspace import Workspace
from remote import server_side
from stored import row_counts

# What registering a dataset writes: none of it may change when registering fails.
REGISTERED = ("datasets", "dataset_versions", "artifacts")


def truncated_parquet(tmp_path: Path) -> Path:
    whole = tmp_path / "whole.parquet"
    pd.DataFrame({"a": range(1000), "b": [str(i) for i in range(1000)]}).to_parquet(whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def garbage_csv(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 20)
    return path


def empty_csv(tmp_path: Path) -> Path:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def broken_json(tmp_path: Path) -> Path:
    path = tmp_path / "broken.json"
    path.write_text('[{"a": 1}, {"a": ')
    return path


def parquet_named_csv(tmp_path: Path) -> Path:
    path = tmp_path / "actually_parquet.csv"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    return path


CASES: list[tuple[str, Callable[[Path], Any], type[CauceError], str]] = [
    ("truncated parquet", truncated_parquet, InvalidInput, "cannot read .*cut.parquet as parquet"),
    ("binary garbage as csv", garbage_csv, InvalidInput, "cannot read .*garbage.csv as csv"),
    ("empty csv", empty_csv, InvalidInput, "EmptyDataError"),
    ("broken json", broken_json, InvalidInput, "cannot read .*broken.json as json"),
    ("parquet named .csv", parquet_named_csv, InvalidInput, "as csv"),
    ("missing file", lambda p: p / "nope.csv", NotFound, "no such file: .*nope.csv"),
    ("missing memory url", lambda p: "memory://nowhere/x.parquet", NotFound, "no such file"),
    ("a folder", lambda p: p, InvalidInput, "cannot tell the format"),
    ("unsupported extension", lambda p: p / "x.xlsx", InvalidInput, "unsupported extension"),
    ("unknown protocol", lambda p: "zz://b/x.csv", InvalidInput, "Protocol not known: zz"),
    ("not a source", lambda p: 42, InvalidInput, "must be a DataFrame, a path"),
    ("bad SQL", lambda p: cauce.data.sql("SELEC 1", url=f"sqlite:///{p}/db.sqlite"),
     InvalidInput, "SQL query failed on sqlite:///.*syntax error"),
    ("missing table", lambda p: cauce.data.sql("SELECT * FROM nope", url=f"sqlite:///{p}/d.db"),
     InvalidInput, "no such table: nope"),
    ("bad SQL URL", lambda p: cauce.data.sql("SELECT 1", url="not a url"),
     InvalidInput, "not a SQLAlchemy database URL"),
    ("unknown driver", lambda p: cauce.data.sql("SELECT 1", url="nodb://h/x"),
     InvalidInput, "cannot use database nodb://h/x"),
    ("empty query", lambda p: cauce.data.sql("  ", url="sqlite://"),
     InvalidInput, "non-empty query"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_sources_raise_and_register_nothing(
    workspace: Workspace,
    tmp_path: Path,
    make: Callable[[Path], Any],
    error: type[CauceError],
    pattern: str,
) -> None:
    cauce.data.register("kept", pd.DataFrame({"a": [1]}))
    before = row_counts(server_side(workspace), *REGISTERED)
    with pytest.raises(error, match=pattern):
        cauce.data.register("kept", make(tmp_path))
    assert row_counts(server_side(workspace), *REGISTERED) == before


def test_failures_leave_both_stores_untouched(any_workspace: Workspace, tmp_path: Path) -> None:
    before = row_counts(server_side(any_workspace), *REGISTERED)
    with pytest.raises(InvalidInput):
        cauce.data.register("orders", truncated_parquet(tmp_path))
    with pytest.raises(InvalidInput, match="cannot be stored as Parquet"):
        cauce.data.register("orders", pd.DataFrame({"mixed": [1, "a", 2.5]}))
    with pytest.raises(InvalidInput, match="duplicate column names"):
        cauce.data.register("orders", pd.DataFrame([[1, 2]], columns=["a", "a"]))
    assert row_counts(server_side(any_workspace), *REGISTERED) == before
    cauce.data.register("orders", pd.DataFrame({"a": [1, 2]}))
    after_first = row_counts(server_side(any_workspace), *REGISTERED)
    with pytest.raises(Conflict, match="schema of dataset 'orders' changed since v1"):
        cauce.data.register("orders", pd.DataFrame({"a": [1.5, 2.5]}))
    assert row_counts(server_side(any_workspace), *REGISTERED) == after_first


def test_unreachable_database_fails_fast(workspace: Workspace) -> None:
    # Port 1 on localhost refuses at once; the connect timeout bounds a silent host.
    url = "postgresql+psycopg://postgres:pw@127.0.0.1:1/none"
    before = row_counts(server_side(workspace), *REGISTERED)
    with pytest.raises(BackendError) as caught:
        cauce.data.register("remote", cauce.data.sql("SELECT 1", url=url, connect_timeout=2))
    message = str(caught.value)
    assert "cannot connect to database postgresql+psycopg://postgres:***@127.0.0.1:1/none" in (
        message
    )
    assert "pw" not in message.replace("psycopg", "")
    assert row_counts(server_side(workspace), *REGISTERED) == before


def test_unknown_versions_and_references(workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="dataset version 'nope@1' does not exist"):
        cauce.data.get_profile("nope@1")
    with pytest.raises(InvalidInput, match="must be a number"):
        cauce.data.diff("a@x", "a@1")
