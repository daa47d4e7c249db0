"""``cauce pipelines run|list|show`` as a real process, locally and through a server."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path

import pytest

from cauce.workspace import Workspace
from clitools import assert_one_line_error as one_line_error
from clitools import cauce

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


# Each call checks its own exit status: some runs are meant to fail.
cauce_cli = functools.partial(cauce, check=False, timeout=120)


@pytest.mark.slow
def test_run_list_show_and_mistakes(workspace: Workspace, tmp_path: Path) -> None:
    home = tmp_path / "ws"  # the workspace fixture's home (remote: the server's URL travels)
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

    # By the start of its id, as the lineage and the audit log print it.
    shown = cauce_cli(home, "pipelines", "show", runs[2]["id"][:8], "--json")
    assert json.loads(shown.stdout)["id"] == runs[2]["id"]
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
