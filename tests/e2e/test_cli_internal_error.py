"""The CLI's last line of defence: a bug is one ``internal error:`` line, exit 2, and a file
holding the traceback; a user mistake stays one ``error:`` line and exit 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from clitools import assert_one_line_error, cauce

# Runs the real ``main()`` with one real function replaced by a bug, as a user would meet it.
CRASH = """
import sys
import cauce.lineage.audit

def broken(*args, **kwargs):
    raise KeyError("[bold]not markup[/] and no such key")

cauce.lineage.audit.events = broken
sys.argv = ["cauce", "audit"]
from cauce.cli.main import main
main()
"""


def _crash(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
    env.update({"CAUCE_HOME": str(home), "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-c", CRASH], capture_output=True, text=True, env=env, timeout=60
    )


def test_a_bug_is_one_internal_error_line_with_the_traceback_in_the_workspace(
    tmp_path: Path,
) -> None:
    home = tmp_path / "ws"
    cauce(home, "init", str(home))
    result = _crash(home)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("internal error: KeyError: '[bold]not markup[/] and no such key'")
    found = re.search(r"traceback in (\S+);", lines[0])
    assert found, lines[0]
    saved = Path(found.group(1))
    assert saved.parent == home / ".cauce" / "logs"
    text = saved.read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert "in broken" in text and "KeyError" in text


def test_without_a_workspace_the_traceback_goes_to_the_temporary_folder(tmp_path: Path) -> None:
    result = _crash(tmp_path / "nowhere")
    assert result.returncode == 2, result.stderr
    found = re.search(r"traceback in (\S+);", result.stderr)
    assert found, result.stderr
    saved = Path(found.group(1))
    try:
        assert "KeyError" in saved.read_text()
        assert not (tmp_path / "nowhere" / ".cauce" / "logs").exists()
    finally:
        saved.unlink()


def test_a_user_mistake_is_still_one_error_line_and_exit_1(tmp_path: Path) -> None:
    result = cauce(tmp_path, "models", "show", "no-such-model", check=False)
    assert_one_line_error(result, "no-such-model")
