"""``cauce pipelines run|list|show`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FLOW = """
from pathlib import Path

import cauce


@cauce.step
def make(n: int, scale: float, label: str, flag: bool) -> dict:
    return {"n": n, "scaled": n * scale, "label": label, "flag": flag}


def exists(path: Path) -> bool:  # a helper: sent to process workers by value
    return Path(path).exists()


@cauce.step
def fail_if(d: dict, path: Path) -> int:
    if exists(path):
        raise RuntimeError("asked to fail")
    return d["n"]


@cauce.pipeline
def flow(n: int, scale: float = 1.0, label: str = "x", flag: bool = False,
         path: Path = Path("missing")):
    return fail_if(make(n, scale, label, flag), path)
"""


def cauce_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env.update({"CAUCE_HOME": str(home), "CAUCE_USER": "cli-tester", "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "cauce.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.slow
def test_run_list_show_and_mistakes(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    flow = tmp_path / "flow.py"
    flow.write_text(textwrap.dedent(FLOW))
    target = f"{flow}:flow"

    done = cauce_cli(
        home, "pipelines", "run", target, "-p", "n=3", "-p", "scale=0.5", "-p", "flag=yes",
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["status"] == "SUCCEEDED" and run["params"]["n"] == 3
    make = run["steps"][0]
    assert make["step"] == "make"
    assert make["inputs"]["n"] == {"value": 3} and make["inputs"]["scale"] == {"value": 0.5}
    assert make["inputs"]["flag"] == {"value": True}

    again = cauce_cli(home, "pipelines", "run", target, "-p", "n=3", "-p", "scale=0.5",
                      "-p", "flag=yes")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "SUCCEEDED" in again.stdout and "yes" in again.stdout  # cache hits shown

    parallel = cauce_cli(home, "pipelines", "run", target, "-p", "n=4", "--executor", "process",
                         "--json")  # fmt: skip
    assert parallel.returncode == 0, parallel.stderr
    assert json.loads(parallel.stdout)["executor"] == "process"

    (tmp_path / "fail").touch()
    failed = cauce_cli(home, "pipelines", "run", target, "-p", "n=3", "-p",
                       f"path={tmp_path / 'fail'}", "--no-cache")  # fmt: skip
    one_line_error(failed, "failed", "asked to fail")
    assert "FAILED" in failed.stdout

    listed = cauce_cli(home, "pipelines", "list", "--json")
    runs = json.loads(listed.stdout)
    assert [r["status"] for r in runs] == ["FAILED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]
    assert cauce_cli(home, "pipelines", "list").returncode == 0

    shown = cauce_cli(home, "pipelines", "show", runs[2]["id"], "--json")
    steps = json.loads(shown.stdout)["steps"]
    assert [(s["step"], s["cache_hit"], s["attempts"]) for s in steps] == [
        ("make", True, 0),
        ("fail_if", True, 0),
    ]
    table = cauce_cli(home, "pipelines", "show", runs[0]["id"])
    assert table.returncode == 0 and "asked to fail" in table.stdout

    one_line_error(cauce_cli(home, "pipelines", "run", target, "-p", "bogus=1"), "'bogus'")
    one_line_error(cauce_cli(home, "pipelines", "run", target, "-p", "n=abc"), "'n'", "int")
    one_line_error(cauce_cli(home, "pipelines", "run", target, "-p", "n"), "key=value")
    one_line_error(cauce_cli(home, "pipelines", "run", target), "missing", "'n'")
    one_line_error(cauce_cli(home, "pipelines", "run", f"{flow}:nope", "-p", "n=1"), "'nope'")
    one_line_error(cauce_cli(home, "pipelines", "run", "nofile.py:flow"), "nofile.py")
    one_line_error(
        cauce_cli(home, "pipelines", "run", target, "-p", "n=1", "--executor", "dask"),
        "unknown executor",
    )
    one_line_error(cauce_cli(home, "pipelines", "show", "nope"), "nope")
