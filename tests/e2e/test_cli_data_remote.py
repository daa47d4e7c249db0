"""``cauce data`` against a ``cauce server`` (``CAUCE_SERVER_URL``), run as a real process:
register, read, profile, diff and validate go through the server, mistakes stay one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clitools import assert_one_line_error, cauce
from remote import TestServer as Server

SUITE = """
kind: CheckSuite
name: orders
checks:
  - not_null: {column: amount}
  - range: {column: amount, min: 0}
"""


@pytest.mark.slow
def test_data_commands_through_a_server(cauce_server: Server, tmp_path: Path) -> None:
    url = cauce_server.new_workspace()
    home = tmp_path / "client"  # holds nothing: the workspace is the server's
    first, second = tmp_path / "orders.csv", tmp_path / "orders2.parquet"
    pd.DataFrame({"id": [1, 2, 3], "amount": [10.0, 20.0, None]}).to_csv(first, index=False)
    pd.DataFrame({"id": [1, 2, 3, 4], "amount": [10.0, 20.0, 30.0, 40.0], "note": "x"}).to_parquet(
        second, index=False
    )

    def run(*args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return cauce(home, "data", *args, check=check, server=url)

    assert (
        "orders@1: 3 rows, 2 columns (bronze)"
        in run("register", "orders", str(first), "-l", "bronze").stdout
    )
    assert_one_line_error(
        run("register", "orders", str(second), "-l", "bronze", check=False),
        "schema of dataset 'orders' (bronze)",
        "added note",
    )
    out = run("register", "orders", str(second), "-l", "bronze", "--allow-schema-change").stdout
    assert "orders@2: 4 rows, 3 columns" in out
    assert (
        "orders@1" in run("register", "orders", str(first), "-l", "bronze").stdout
    )  # same content

    listed = json.loads(run("list", "--json").stdout)
    assert [(d["name"], d["version"], d["row_count"]) for d in listed] == [("orders", 2, 4)]
    shown = json.loads(run("show", "orders@1", "--json").stdout)
    assert shown["source"] == str(first)
    assert [v["version"] for v in json.loads(run("versions", "orders", "--json").stdout)] == [1, 2]
    profile = json.loads(run("profile", "orders@1", "--json").stdout)
    assert profile["columns"]["amount"]["null_rate"] == pytest.approx(1 / 3)
    diff = json.loads(run("diff", "orders@1", "orders@2", "--json").stdout)
    assert diff["schema"]["added"] == {"note": "str"}
    assert_one_line_error(run("show", "orders@9", check=False), "orders@9", "does not exist")

    suite = tmp_path / "checks.yaml"
    suite.write_text(SUITE)
    failed = run("validate", "orders@1", "--suite", str(suite), check=False)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "failed: not_null(amount): 1 of 3 rows fail" in failed.stderr
    verdict = json.loads(run("validate", "orders@2", "--suite", str(suite), "--json").stdout)
    assert verdict["passed"] and verdict["id"] and verdict["dataset"] == "orders@2"
    assert not home.exists()  # nothing was written on the client's side
