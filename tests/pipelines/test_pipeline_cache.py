"""Cache keys: a second run reuses everything; a change invalidates exactly its dependents."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cauce
from cauce.pipelines.decorators import Pipeline
from cauce.pipelines.loading import load_pipeline
from cauce.pipelines.runs import PipelineRun
from cauce.workspace import Workspace
from remote import server_side

# b and c depend on a; d on b and c. {A_BODY} is the line that computes a's result.
TEMPLATE = """
import cauce
from pathlib import Path


@cauce.step
def a(x: int) -> int:
    {A_BODY}


@cauce.step
def b(y: int) -> int:
    return y * 2


@cauce.step
def c(k: int) -> int:
    return k + 100


@cauce.step
def d(p: int, q: int) -> dict:
    return {"sum": p + q}


@cauce.pipeline
def flow(x: int = 1, k: int = 0):
    return d(b(a(x)), c(k))
"""


def write(tmp_path: Path, name: str, a_body: str = "return x + 1") -> Pipeline:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(TEMPLATE).replace("{A_BODY}", a_body))
    return load_pipeline(f"{path}:flow")


def ran(run: PipelineRun) -> set[str]:
    """The steps that executed (not reused from the cache)."""
    assert run.succeeded, run.error
    return {name for name, s in run.steps.items() if not s.cache_hit}


def test_second_run_is_all_hits(workspace: Workspace, tmp_path: Path) -> None:
    flow = write(tmp_path, "v1")
    first = flow.run(x=1)
    assert ran(first) == {"a", "b", "c", "d"}
    assert first.result() == {"sum": 104}
    second = flow.run(x=1)
    assert ran(second) == set()
    assert second.result() == {"sum": 104}
    for name, step in second.steps.items():
        assert step.cache_key == first.steps[name].cache_key
        assert step.output == first.steps[name].output
        assert step.attempts == 0 and step.status == "SUCCEEDED"


def test_source_change_invalidates_the_step_and_its_dependents(
    workspace: Workspace, tmp_path: Path
) -> None:
    write(tmp_path, "v1").run(x=1)
    changed = write(tmp_path, "v2", "return x + 2").run(x=1)
    assert ran(changed) == {"a", "b", "d"}
    assert changed.result() == {"sum": 106}


def test_same_output_after_a_source_change_keeps_dependents_cached(
    workspace: Workspace, tmp_path: Path
) -> None:
    write(tmp_path, "v1").run(x=1)
    # New source, same output: only a runs again; its dependents see the same input sha256.
    again = write(tmp_path, "v2", "return 1 + x  # reordered").run(x=1)
    assert ran(again) == {"a"}


def test_parameter_change_invalidates_its_branch_only(workspace: Workspace, tmp_path: Path) -> None:
    flow = write(tmp_path, "v1")
    flow.run(x=1, k=0)
    assert ran(flow.run(x=1, k=5)) == {"c", "d"}
    assert ran(flow.run(x=2, k=5)) == {"a", "b", "d"}


def test_upstream_output_change_invalidates_dependents(
    workspace: Workspace, tmp_path: Path
) -> None:
    data = tmp_path / "value.txt"
    data.write_text("1")
    # a reads a file and is never cached: its output decides whether b and d run.
    flow = write(tmp_path, "v1", "return int(Path(x).read_text()) if isinstance(x, str) else x")
    uncached = cauce.step(cache=False)(flow.fn.__globals__["a"].fn)
    flow.fn.__globals__["a"] = uncached
    first = flow.run(x=str(data))
    assert ran(first) == {"a", "b", "c", "d"}
    assert ran(flow.run(x=str(data))) == {"a"}  # same file: same output sha256
    data.write_text("7")
    changed = flow.run(x=str(data))
    assert ran(changed) == {"a", "b", "d"}
    assert changed.result() == {"sum": 114}


def test_cache_false_forces_a_run(workspace: Workspace, tmp_path: Path) -> None:
    flow = write(tmp_path, "v1")
    flow.run(x=1)
    forced = flow.run(x=1, cache=False)
    assert ran(forced) == {"a", "b", "c", "d"}
    assert all(s.attempts == 1 for s in forced.steps.values())


def test_env_is_part_of_the_key(workspace: Workspace) -> None:
    def body(n: int) -> int:
        return n

    plain = cauce.step(body)
    with_env = cauce.step(env={"numpy": "2.0"})(body)
    other_env = cauce.step(env=["numpy==1.26"])(body)

    def key(step: cauce.pipelines.decorators.Step) -> str:
        @cauce.pipeline
        def one(n: int = 1):
            return step(n)

        return one.run().steps["body"].cache_key

    assert len({key(plain), key(with_env), key(other_env)}) == 3


def test_a_corrupted_cached_output_is_recomputed(workspace: Workspace, tmp_path: Path) -> None:
    flow = write(tmp_path, "v1")
    first = flow.run(x=1)
    sha = first.steps["d"].output["sha256"]  # type: ignore[index]
    path = Path(server_side(workspace).artifacts.path_of(sha))
    path.chmod(0o644)
    path.write_text('{"sum": 0}')
    again = flow.run(x=1)
    assert ran(again) == {"d"}  # the verified read failed: d runs and rewrites its output
    assert again.result() == {"sum": 104}


def test_runs_and_cache_hits_on_every_store(any_workspace: Workspace, tmp_path: Path) -> None:
    """The hot-path SQL (step runs, cache lookups) on SQLite and PostgreSQL."""
    flow = write(tmp_path, "v1")
    first = flow.run(x=1)
    assert ran(first) == {"a", "b", "c", "d"}
    second = flow.run(x=1)
    assert ran(second) == set()
    assert second.steps["d"].output == first.steps["d"].output
    assert second.result() == {"sum": 104}
