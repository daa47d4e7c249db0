"""``cauce data``, run as a real process: register from files and SQL, read, profile, diff."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clitools import assert_one_line_error, cauce


@pytest.mark.slow
def test_register_show_versions_profile_diff(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    first = tmp_path / "orders.csv"
    second = tmp_path / "orders2.parquet"
    pd.DataFrame({"id": [1, 2, 3], "amount": [10.0, 20.0, None]}).to_csv(first, index=False)
    pd.DataFrame({"id": [1, 2, 3, 4], "amount": [10.0, 20.0, 30.0, 40.0], "note": "x"}).to_parquet(
        second, index=False
    )

    out = cauce(home, "data", "register", "orders", str(first), "--layer", "bronze").stdout
    assert "orders@1: 3 rows, 2 columns (bronze)" in out
    refused = cauce(home, "data", "register", "orders", str(second), "-l", "bronze", check=False)
    assert_one_line_error(refused, "schema of dataset 'orders' (bronze)", "added note")
    out = cauce(
        home, "data", "register", "orders", str(second), "-l", "bronze", "--allow-schema-change"
    ).stdout
    assert "orders@2: 4 rows, 3 columns" in out

    listed = json.loads(cauce(home, "data", "list", "--json").stdout)
    assert [(d["name"], d["version"], d["row_count"]) for d in listed] == [("orders", 2, 4)]
    shown = json.loads(cauce(home, "data", "show", "orders@1", "--json").stdout)
    assert shown["source"] == str(first)
    assert shown["schema"] == {"id": "int64", "amount": "float64"}
    versions = json.loads(cauce(home, "data", "versions", "orders", "--json").stdout)
    assert [v["version"] for v in versions] == [1, 2]

    profile = json.loads(cauce(home, "data", "profile", "orders@1", "--json").stdout)
    assert profile["columns"]["amount"]["null_rate"] == pytest.approx(1 / 3)
    assert profile["columns"]["amount"]["mean"] == 15.0
    table = cauce(home, "data", "profile", "orders@1").stdout
    assert "33.33%" in table and "amount" in table

    diff = json.loads(cauce(home, "data", "diff", "orders@1", "orders@2", "--json").stdout)
    assert diff["schema"]["added"] == {"note": "str"}
    assert diff["row_count"] == {"from": 3, "to": 4, "change": 1}
    assert diff["columns"]["amount"]["null_rate"]["to"] == 0.0
    text = cauce(home, "data", "diff", "orders@1", "orders@2").stdout
    assert "rows 3 → 4 (+1)" in text and "note" in text


def test_register_from_sql(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER, b TEXT)"))
        conn.execute(text("INSERT INTO t VALUES (1, 'x'), (2, 'y')"))
    engine.dispose()
    home = tmp_path / "ws"
    out = cauce(home, "data", "register", "t", "SELECT * FROM t", "--sql-url", url).stdout
    assert "t@1: 2 rows, 2 columns" in out
    text_out = cauce(home, "data", "show", "t").stdout
    assert "sql: SELECT * FROM t" in text_out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("data", "register", "x", "missing.csv"), ("no such file: missing.csv",)),
        (("data", "register", "x", "notes.txt"), ("unsupported extension '.txt'",)),
        (
            ("data", "register", "x", "SELEC 1", "--sql-url", "sqlite://"),
            ("SQL query failed on sqlite://", "syntax error"),
        ),
        (("data", "show", "nope@1"), ("dataset version 'nope@1' does not exist",)),
        (("data", "diff", "nope@1", "nope@2"), ("does not exist",)),
    ],
    ids=["missing-file", "extension", "bad-sql", "unknown-version", "diff-unknown"],
)
def test_data_mistakes_print_one_line(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    assert_one_line_error(cauce(tmp_path / "ws", *args, check=False), *words)


def test_garbage_file_is_one_line_and_registers_nothing(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 10)
    result = cauce(home, "data", "register", "g", str(garbage), check=False)
    assert_one_line_error(result, "cannot read", "as csv")
    assert json.loads(cauce(home, "data", "list", "--json").stdout) == []
