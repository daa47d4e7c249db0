"""``cauce data validate``, run as a real process: exit codes, failing lines, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, cauce

SUITE = """
kind: CheckSuite
name: orders
checks:
  - not_null: {column: amount}
  - unique: {column: order_id}
    severity: {unique_severity}
  - range: {column: amount, min: 0}
  - row_count: {min: 1}
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with orders@1 (a repeated id, a negative amount) and a clean orders@2."""
    home = tmp_path_factory.mktemp("checks") / "ws"
    code = (
        "import cauce, pandas as pd\n"
        "cauce.data.register('orders', pd.DataFrame("
        "{'order_id': [1, 2, 2, 3], 'amount': [5.0, -1.0, 3.0, 4.0]}))\n"
        "cauce.data.register('orders', pd.DataFrame("
        "{'order_id': [1, 2, 3, 4], 'amount': [5.0, 1.0, 3.0, 4.0]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env["CAUCE_HOME"] = str(home)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    return home


@pytest.mark.slow
def test_validate_exit_codes_and_lines(home: Path, tmp_path: Path) -> None:
    suite = tmp_path / "checks.yaml"
    suite.write_text(SUITE.replace("{unique_severity}", "error"))

    failed = cauce(home, "data", "validate", "orders@1", "--suite", str(suite), check=False)
    assert failed.returncode == 1, failed.stderr
    assert "Traceback" not in failed.stderr
    lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(lines) == 2
    assert lines[0].startswith("failed: unique(order_id): 2 of 4 rows fail")
    assert lines[1].startswith("failed: range(amount): 1 of 4 rows fail")
    assert "not_null(amount)" in failed.stdout  # the table lists every check
    # Then the rows each failed check failed on, every column, to see what is wrong.
    shown = failed.stdout.split("Rows failing unique(order_id), the first 2 of 2", 1)[1]
    unique, negative = shown.split("Rows failing range(amount), the first 1 of 1", 1)
    rows = [line.split("│")[1:-1] for line in unique.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert cells == [["1", "2", "-1.0"], ["2", "2", "3.0"]]
    assert "│ 1   │ 2        │ -1.0   │" in negative

    passed = cauce(home, "data", "validate", "orders@2", "--suite", str(suite))
    assert "Passed: orders@2" in passed.stdout

    suite.write_text(SUITE.replace("{unique_severity}", "warn").replace("min: 0}", "min: -5}"))
    warned = cauce(home, "data", "validate", "orders@1", "--suite", str(suite))
    assert "warning: unique(order_id)" in warned.stdout
    assert warned.stderr.strip() == ""

    as_json = cauce(home, "data", "validate", "orders@1", "--suite", str(suite), "--json")
    result = json.loads(as_json.stdout)
    assert result["passed"] is True and result["dataset"] == "orders@1"
    unique = next(c for c in result["checks"] if c["name"] == "unique(order_id)")
    assert (unique["failing"], [r["_row"] for r in unique["sample"]]) == (2, [1, 2])

    audit = json.loads(cauce(home, "audit", "--action", "check_result.*", "--json").stdout)
    assert len(audit) == 4 and all(e["actor"] == "cli-tester" for e in audit)


def test_validate_mistakes_print_one_line(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: s\nchecks:\n  - not_a_check: {column: amount}\n")
    assert_one_line_error(
        cauce(home, "data", "validate", "orders@1", "--suite", str(bad), check=False),
        "checks.0.not_a_check",
    )
    missing = tmp_path / "missing.yaml"
    missing.write_text("name: s\nchecks:\n  - not_null: {column: price}\n")
    assert_one_line_error(
        cauce(home, "data", "validate", "orders@1", "--suite", str(missing), check=False),
        "'price'",
        "orders@1",
    )
    injected = tmp_path / "injected.yaml"
    injected.write_text('name: s\nchecks:\n  - sql: "1=1; DROP TABLE x"\n')
    assert_one_line_error(
        cauce(home, "data", "validate", "orders@1", "--suite", str(injected), check=False),
        "checks.0.sql",
    )
    assert_one_line_error(
        cauce(home, "data", "validate", "orders@9", "--suite", str(missing), check=False),
        "orders@9",
    )
