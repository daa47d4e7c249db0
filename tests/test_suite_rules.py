"""The test suite's own rules, checked on throwaway test folders in a pytest subprocess: under
``CI=true`` nothing is skipped for lack of a dependency, and ``slow`` tests are deselected only
by a bare ``pytest`` on a developer's machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

# The suite's own conftest, loaded under another name: its hooks and fixtures, unchanged.
CONFTEST = f"""
import importlib.util
import sys

sys.path.insert(0, {str(TESTS)!r})
spec = importlib.util.spec_from_file_location("suite_conftest", {str(TESTS / "conftest.py")!r})
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
globals().update({{k: v for k, v in vars(suite).items() if not k.startswith("__")}})
"""

TESTS_FILE = """
import pytest
from optional import need

def test_quick():
    pass

@pytest.mark.slow
def test_slow():
    pass

def test_needs_a_missing_module():
    need("no_such_module_for_cauce_tests", extra="dev")
"""

# A module that needs what is missing before any test of it runs.
MODULE_NEEDS = """
from optional import need

missing = need("no_such_module_for_cauce_tests_either")

def test_never_runs():
    pass
"""


def _pytest(root: Path, *args: str, ci: bool) -> subprocess.CompletedProcess[str]:
    """pytest in a project at ``root`` that uses the suite's conftest, as CI or a developer."""
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = t\nmarkers =\n    slow: slow\n")
    (root / "t").mkdir(exist_ok=True)
    (root / "t" / "conftest.py").write_text(CONFTEST)
    (root / "t" / "test_rules.py").write_text(TESTS_FILE)
    (root / "t" / "test_module_needs.py").write_text(MODULE_NEEDS)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
    )


def test_a_developer_s_bare_pytest_skips_what_is_missing_and_leaves_out_slow_tests(
    tmp_path: Path,
) -> None:
    result = _pytest(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped, 1 deselected" in result.stdout
    assert "slow tests deselected" in result.stdout
    assert "no_such_module_for_cauce_tests is not installed (pip install -e '.[dev]')" in (
        result.stdout
    )


@pytest.mark.slow
def test_slow_tests_run_with_slow_with_m_and_with_named_paths(tmp_path: Path) -> None:
    for args in (["--slow"], ["-m", "slow or not slow"]):
        result = _pytest(tmp_path, *args, ci=False)
        assert "2 passed, 2 skipped" in result.stdout, (args, result.stdout)
    named = _pytest(tmp_path, "t/test_rules.py", ci=False)
    assert "2 passed, 1 skipped" in named.stdout, named.stdout
    quick = _pytest(tmp_path, "-m", "not slow", ci=False)
    assert "1 passed, 2 skipped, 1 deselected" in quick.stdout, quick.stdout


def test_under_ci_everything_runs_and_a_missing_dependency_fails(tmp_path: Path) -> None:
    tests = _pytest(tmp_path, "t/test_rules.py", ci=True)
    assert tests.returncode == 1, tests.stdout
    assert "1 failed, 2 passed" in tests.stdout
    assert "CI=true but no_such_module_for_cauce_tests is not installed" in tests.stdout
    # A module that needs it at import stops the whole run at collection.
    everything = _pytest(tmp_path, ci=True)
    assert everything.returncode == 2, everything.stdout
    assert "CI=true but no_such_module_for_cauce_tests_either is not installed" in (
        everything.stdout
    )
