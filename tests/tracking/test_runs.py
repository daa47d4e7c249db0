"""Tracking runs: lifecycle, what they log, what they record, bad input, audit.

Every test that touches the store runs on SQLite and on PostgreSQL (``any_workspace``).
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cauce
from cauce.errors import BackendError, CauceError, Conflict, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.tracking import environment, experiments, runs
from cauce.workspace import Workspace
from stored import refusing_inserts, row_counts

MISSING = "f" * 32


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in runs.get_metric_history(run_id, key)]


# -- lifecycle ------------------------------------------------------------------------------


def test_run_ends_finished_after_the_block(any_workspace: Workspace) -> None:
    with cauce.start_run(experiment="churn", run_name="baseline") as run:
        assert run.info.status == "RUNNING"
        assert run.info.end_time is None
        assert cauce.active_run() is run
    info = run.info
    assert info.status == "FINISHED"
    assert info.end_time is not None and info.end_time >= info.start_time
    assert info.run_name == "baseline"
    assert info.user_id == "tester"
    assert info.error is None
    assert experiments.get_experiment("churn").experiment_id == info.experiment_id
    assert cauce.active_run() is None


def test_run_fails_with_the_error_when_the_block_raises(any_workspace: Workspace) -> None:
    with pytest.raises(ZeroDivisionError), cauce.start_run() as run:
        cauce.log_metric("before", 1.0)
        1 / 0  # noqa: B018
    info = run.info
    assert info.status == "FAILED"
    assert info.error is not None and "ZeroDivisionError" in info.error
    assert "division by zero" in info.error
    assert run.data.metrics == {"before": 1.0}
    assert cauce.active_run() is None


def test_nested_runs_record_their_parent(any_workspace: Workspace) -> None:
    with cauce.start_run() as parent:
        with cauce.start_run(nested=True) as child:
            assert cauce.active_run() is child
            cauce.log_metric("child_only", 1.0)
        assert cauce.active_run() is parent
        assert child.info.parent_run_id == parent.run_id
        assert child.info.status == "FINISHED"
        assert parent.info.status == "RUNNING"
        assert parent.info.parent_run_id is None
        assert parent.data.metrics == {}


def test_second_top_level_run_is_a_conflict(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        before = row_counts(any_workspace)
        with pytest.raises(Conflict) as info:
            cauce.start_run()
        assert run.run_id in info.value.message
        assert info.value.hint and "nested=True" in info.value.hint
        assert row_counts(any_workspace) == before
        assert cauce.active_run() is run
    assert run.info.status == "FINISHED"


def test_resuming_a_run_by_id(any_workspace: Workspace) -> None:
    with cauce.start_run() as first:
        cauce.log_metric("loss", 1.0, step=0)
    with cauce.start_run(run_id=first.run_id) as again:
        assert again.info.status == "RUNNING"
        cauce.log_metric("loss", 0.5, step=1)
    assert again.info.status == "FINISHED"
    assert history(first.run_id, "loss") == [(0, 1.0), (1, 0.5)]


def test_fluent_end_run_and_explicit_status(any_workspace: Workspace) -> None:
    run = cauce.start_run()
    cauce.end_run("KILLED")
    assert run.info.status == "KILLED"
    assert cauce.active_run() is None
    with pytest.raises(NotFound):
        cauce.end_run()
    with pytest.raises(NotFound):
        cauce.log_metric("x", 1.0)


# -- params ---------------------------------------------------------------------------------


def test_params_are_logged_as_strings_and_keep_their_first_value(
    any_workspace: Workspace,
) -> None:
    with cauce.start_run() as run:
        assert cauce.log_param("C", 0.5) == 0.5
        cauce.log_params({"kernel": "rbf", "depth": 3, "flag": None})
        cauce.log_param("C", 0.5)  # the same value again is fine
        before = row_counts(any_workspace)

        with pytest.raises(Conflict) as info:
            cauce.log_params({"new_key": "x", "C": 0.7})
        assert "C" in info.value.message and "0.7" in info.value.message
        assert row_counts(any_workspace) == before

        with pytest.raises(Conflict):
            cauce.log_param("depth", 4)
    assert run.data.params == {"C": "0.5", "kernel": "rbf", "depth": "3", "flag": "None"}


# -- metrics --------------------------------------------------------------------------------


def test_metric_history_is_ordered_by_step_then_time(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        cauce.log_metric("loss", 0.3, step=3, timestamp=1_000)
        cauce.log_metric("loss", 0.9, step=1, timestamp=3_000)
        cauce.log_metric("loss", 0.5, step=2, timestamp=2_000)
        cauce.log_metric("loss", 0.4, step=2, timestamp=2_500)
        cauce.log_metric("acc", 0.7)
    metrics = runs.get_metric_history(run.run_id, "loss")
    assert [(m.key, m.step, m.timestamp, m.value) for m in metrics] == [
        ("loss", 1, 3_000, 0.9),
        ("loss", 2, 2_000, 0.5),
        ("loss", 2, 2_500, 0.4),
        ("loss", 3, 1_000, 0.3),
    ]
    (acc,) = runs.get_metric_history(run.run_id, "acc")
    assert acc.step == 0 and acc.value == 0.7
    assert acc.timestamp >= run.info.start_time
    # The run shows the value at the highest step.
    assert run.data.metrics == {"loss": 0.3, "acc": 0.7}
    assert runs.get_metric_history(run.run_id, "never_logged") == []


def test_log_metrics_writes_a_batch_with_one_step_and_time(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        cauce.log_metrics({"a": 1, "b": np.float32(0.25), "c/d": np.int64(7)}, step=np.int64(5))
        cauce.log_metrics({"a": 2.0}, step=6, timestamp=123)
    a = runs.get_metric_history(run.run_id, "a")
    b = runs.get_metric_history(run.run_id, "b")
    cd = runs.get_metric_history(run.run_id, "c/d")
    assert [(m.step, m.value) for m in a] == [(5, 1.0), (6, 2.0)]
    assert a[1].timestamp == 123
    assert (b[0].step, b[0].value, cd[0].value) == (5, 0.25, 7.0)
    assert a[0].timestamp == b[0].timestamp == cd[0].timestamp
    assert run.data.metrics == {"a": 2.0, "b": 0.25, "c/d": 7.0}


def test_many_metrics_are_all_kept(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        for step in range(500):
            cauce.log_metric("loss", 1.0 / (step + 1), step=step)
    values = history(run.run_id, "loss")
    assert values == [(step, 1.0 / (step + 1)) for step in range(500)]


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf")],
    ids=["nan", "inf", "-inf", "numpy-nan", "numpy-float32-inf"],
)
def test_non_finite_metric_values_round_trip(any_workspace: Workspace, value: float) -> None:
    with cauce.start_run() as run:
        cauce.log_metric("x", value, step=1)
        cauce.log_metrics({"y": value, "z": 2.0}, step=2)
    stored = run.data.metrics
    for got in (stored["x"], stored["y"], *dict(history(run.run_id, "x")).values()):
        if math.isnan(value):
            assert math.isnan(got)
        else:
            assert got == float(value)
    assert run.data.metrics["z"] == 2.0


def test_nan_inf_and_finite_values_in_one_history(any_workspace: Workspace) -> None:
    values = [0.0, math.nan, math.inf, -math.inf, -0.5, 1e308, 5e-324]
    with cauce.start_run() as run:
        for step, value in enumerate(values):
            cauce.log_metric("m", value, step=step)
    got = history(run.run_id, "m")
    assert [s for s, _ in got] == list(range(len(values)))
    for (_, stored), expected in zip(got, values, strict=True):
        assert (math.isnan(stored) and math.isnan(expected)) or stored == expected
    assert run.data.metrics["m"] == 5e-324


# -- tags -----------------------------------------------------------------------------------


def test_tags_overwrite_and_are_audited(any_workspace: Workspace) -> None:
    with cauce.start_run(tags={"team": "risk"}) as run:
        cauce.set_tag("stage", "dev")
        cauce.set_tags({"stage": "prod", "owner": 42})
    assert run.data.tags == {"team": "risk", "stage": "prod", "owner": "42"}

    events = audit.events(any_workspace, entity_kind="run", entity_id=run.run_id)
    actions = [e.action for e in reversed(events)]
    assert actions == ["run.create", "run.tag", "run.tag", "run.end"]
    last_tag = events[1]
    assert last_tag.before == {"stage": "dev"}
    assert last_tag.after == {"stage": "prod", "owner": "42"}
    assert all(e.actor == "tester" for e in events)
    end = events[0]
    assert end.before is not None and end.before["status"] == "RUNNING"
    assert end.after is not None and end.after["status"] == "FINISHED"
    created = audit.events(any_workspace, action="experiment.create")
    assert [e.entity_id for e in created] == [run.info.experiment_id]


# -- audit and change commit together --------------------------------------------------------


def _fail_after_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every audit write succeed and then fail the operation right after it."""
    for name in ("record", "record_fast"):  # the SQLAlchemy path and the hot path
        real = getattr(audit, name)

        def record_then_fail(*args: Any, _real: Any = real, **kwargs: Any) -> None:
            _real(*args, **kwargs)
            raise RuntimeError("injected failure after the audit write")

        monkeypatch.setattr(audit, name, record_then_fail)


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param(lambda rid: runs.create_run("fresh-experiment"), id="create_run"),
        pytest.param(lambda rid: runs.end_run(rid, "FINISHED"), id="end_run"),
        pytest.param(lambda rid: runs.set_run_status(rid, "KILLED"), id="set_run_status"),
        pytest.param(lambda rid: experiments.create_experiment("other"), id="create_experiment"),
    ],
)
def test_a_failing_operation_leaves_neither_change_nor_audit_event(
    any_workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    operation: Callable[[str], Any],
) -> None:
    run_id = runs.create_run("e").run_id
    before = row_counts(any_workspace)
    info_before = runs.get_run(run_id)

    _fail_after_audit(monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        operation(run_id)

    assert row_counts(any_workspace) == before
    assert runs.get_run(run_id) == info_before


def test_tags_whose_audit_row_is_refused_are_not_set(any_workspace: Workspace) -> None:
    """``set_tags`` is one transaction (one statement on PostgreSQL): the database refusing
    its audit row leaves the tags as they were."""
    run_id = runs.create_run("e", tags={"k": "old"}).run_id
    before = row_counts(any_workspace)
    with refusing_inserts(any_workspace, "audit_events"), pytest.raises(BackendError):
        runs.set_tags(run_id, {"k": "new", "other": "v"})
    assert row_counts(any_workspace) == before
    assert runs.get_run(run_id).data.tags == {"k": "old"}
    runs.set_tags(run_id, {"k": "new"})
    [event] = audit.events(any_workspace, action="run.tag")
    assert (event.before, event.after) == ({"k": "old"}, {"k": "new"})


# -- what a run records about its source ------------------------------------------------------


def test_run_records_python_and_packages(any_workspace: Workspace) -> None:
    with cauce.start_run() as run:
        pass
    info = run.info
    assert info.python_version == platform.python_version()
    assert info.packages_hash == environment.packages_hash()
    assert info.packages_hash is not None and len(info.packages_hash) == 64
    int(info.packages_hash, 16)
    assert info.entry_point


_REPORT = textwrap.dedent(
    """
    import json
    import cauce

    with cauce.start_run() as run:
        pass
    info = run.info
    print(json.dumps({
        "commit": info.source_commit,
        "dirty": info.source_dirty,
        "entry_point": info.entry_point,
        "python": info.python_version,
    }))
    """
)


def _report_source(script: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # Stop git from finding a repository above the temporary folder.
    env["GIT_CEILING_DIRECTORIES"] = str(script.parent.parent)
    done = subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(repo.parent)
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_source_outside_git_has_no_commit(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    script = folder / "train.py"
    script.write_text(_REPORT)
    report = _report_source(script)
    assert report["commit"] is None
    assert report["dirty"] is None
    assert report["entry_point"] == str(script.resolve())
    assert report["python"] == platform.python_version()


def test_a_script_piped_to_python_is_recorded_as_stdin_not_a_file_named_dash(
    workspace: Workspace, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-"], input=_REPORT, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["entry_point"] == "<stdin>"


def test_source_in_git_records_commit_and_dirty_flag(workspace: Workspace, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(_REPORT)
    (repo / "data.txt").write_text("v1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "train.py", "data.txt")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")

    clean = _report_source(script)
    assert clean["commit"] == head
    assert clean["dirty"] is False

    (repo / "data.txt").write_text("v2\n")
    dirty = _report_source(script)
    assert dirty["commit"] == head
    assert dirty["dirty"] is True
    assert dirty["entry_point"] == str(script.resolve())


# -- bad input leaves the store unchanged ------------------------------------------------------

LONG_KEY = "k" * 251

BAD_CALLS: dict[str, tuple[type[CauceError], Callable[[str], Any]]] = {
    # keys
    "metric-empty-key": (InvalidInput, lambda r: runs.log_metric(r, "", 1.0)),
    "metric-251-char-key": (InvalidInput, lambda r: runs.log_metric(r, LONG_KEY, 1.0)),
    "metric-dotdot-key": (InvalidInput, lambda r: runs.log_metric(r, "a/../../etc", 1.0)),
    "metric-leading-dotdot-key": (InvalidInput, lambda r: runs.log_metric(r, "../x", 1.0)),
    "metric-absolute-key": (InvalidInput, lambda r: runs.log_metric(r, "/etc/passwd", 1.0)),
    "metric-backslash-key": (InvalidInput, lambda r: runs.log_metric(r, "..\\x", 1.0)),
    "metric-non-string-key": (InvalidInput, lambda r: runs.log_metric(r, 3, 1.0)),  # type: ignore[arg-type]
    "param-empty-key": (InvalidInput, lambda r: runs.log_params(r, {"": 1})),
    "param-251-char-key": (InvalidInput, lambda r: runs.log_params(r, {LONG_KEY: 1})),
    "param-dotdot-key": (InvalidInput, lambda r: runs.log_params(r, {"..": 1})),
    "param-too-long-value": (InvalidInput, lambda r: runs.log_params(r, {"p": "x" * 6001})),
    "params-not-a-mapping": (InvalidInput, lambda r: runs.log_params(r, [("a", 1)])),  # type: ignore[arg-type]
    "tag-empty-key": (InvalidInput, lambda r: runs.set_tags(r, {"": "v"})),
    "tag-251-char-key": (InvalidInput, lambda r: runs.set_tags(r, {LONG_KEY: "v"})),
    "tag-dotdot-key": (InvalidInput, lambda r: runs.set_tags(r, {"a/../b": "v"})),
    # metric values, steps and timestamps
    "metric-string-value": (InvalidInput, lambda r: runs.log_metric(r, "m", "0.5")),  # type: ignore[arg-type]
    "metric-none-value": (InvalidInput, lambda r: runs.log_metric(r, "m", None)),  # type: ignore[arg-type]
    "metric-bool-value": (InvalidInput, lambda r: runs.log_metric(r, "m", True)),
    "metric-list-value": (InvalidInput, lambda r: runs.log_metric(r, "m", [1.0])),  # type: ignore[arg-type]
    "metric-complex-value": (InvalidInput, lambda r: runs.log_metric(r, "m", 1j)),  # type: ignore[arg-type]
    "metric-too-large-int": (InvalidInput, lambda r: runs.log_metric(r, "m", 10**400)),
    "metric-float-step": (InvalidInput, lambda r: runs.log_metric(r, "m", 1.0, step=1.5)),  # type: ignore[arg-type]
    "metric-string-step": (InvalidInput, lambda r: runs.log_metric(r, "m", 1.0, step="3")),  # type: ignore[arg-type]
    "metric-step-beyond-64-bits": (
        InvalidInput,
        lambda r: runs.log_metric(r, "m", 1.0, step=2**63),
    ),
    "metric-string-timestamp": (
        InvalidInput,
        lambda r: runs.log_metric(r, "m", 1.0, timestamp="now"),  # type: ignore[arg-type]
    ),
    "metrics-batch-one-bad-value": (
        InvalidInput,
        lambda r: runs.log_metrics(r, {"good": 1.0, "also_good": 2.0, "bad": "oops"}),
    ),
    "metrics-batch-one-bad-key": (
        InvalidInput,
        lambda r: runs.log_metrics(r, {"good": 1.0, "bad/../key": 2.0}),
    ),
    "metrics-not-a-mapping": (InvalidInput, lambda r: runs.log_metrics(r, [1.0, 2.0])),  # type: ignore[arg-type]
    # experiment and run names
    "experiment-name-slash": (InvalidInput, lambda r: experiments.create_experiment("a/b")),
    "experiment-name-backslash": (InvalidInput, lambda r: experiments.create_experiment("a\\b")),
    "experiment-name-empty": (InvalidInput, lambda r: experiments.create_experiment(" ")),
    "run-in-experiment-slash": (InvalidInput, lambda r: runs.create_run("team/churn")),
    "run-in-experiment-backslash": (InvalidInput, lambda r: runs.create_run("team\\churn")),
    "run-name-slash": (InvalidInput, lambda r: runs.create_run("e", "a/b")),
    "run-bad-tag-key": (InvalidInput, lambda r: runs.create_run("e", tags={"": "v"})),
    # statuses
    "end-run-bad-status": (InvalidInput, lambda r: runs.end_run(r, "DONE")),
    "end-run-running-status": (InvalidInput, lambda r: runs.end_run(r, "RUNNING")),
    "set-status-bad": (InvalidInput, lambda r: runs.set_run_status(r, "finished")),
    # unknown runs
    "log-metric-unknown-run": (NotFound, lambda r: runs.log_metric(MISSING, "m", 1.0)),
    "log-metrics-unknown-run": (NotFound, lambda r: runs.log_metrics(MISSING, {"a": 1, "b": 2})),
    "log-param-unknown-run": (NotFound, lambda r: runs.log_params(MISSING, {"p": 1})),
    "set-tag-unknown-run": (NotFound, lambda r: runs.set_tags(MISSING, {"t": "v"})),
    "get-run-unknown": (NotFound, lambda r: runs.get_run(MISSING)),
    "end-run-unknown": (NotFound, lambda r: runs.end_run(MISSING)),
    "history-unknown-run": (NotFound, lambda r: runs.get_metric_history(MISSING, "m")),
    "parent-unknown-run": (NotFound, lambda r: runs.create_run("e", parent_run_id=MISSING)),
    "fluent-metric-unknown-run": (NotFound, lambda r: cauce.log_metric("m", 1.0, run_id=MISSING)),
    "fluent-param-unknown-run": (NotFound, lambda r: cauce.log_param("p", 1, run_id=MISSING)),
    "fluent-tag-unknown-run": (NotFound, lambda r: cauce.set_tag("t", "v", run_id=MISSING)),
    "fluent-end-unknown-run": (NotFound, lambda r: cauce.end_run(run_id=MISSING)),
    "fluent-resume-unknown-run": (NotFound, lambda r: cauce.start_run(run_id=MISSING)),
    "get-run-empty-id": (InvalidInput, lambda r: runs.get_run("")),
}


def test_bad_input_is_a_clear_error_and_changes_nothing(
    any_workspace: Workspace, subtests: pytest.Subtests
) -> None:
    run_id = runs.create_run("e").run_id
    runs.log_metric(run_id, "m", 0.5, step=0)
    runs.log_params(run_id, {"p": 1})
    runs.set_tags(run_id, {"t": "v"})
    for case, (expected, call) in BAD_CALLS.items():
        with subtests.test(case):
            before = row_counts(any_workspace)
            stored = runs.get_run(run_id)

            with pytest.raises(CauceError) as info:
                call(run_id)

            assert type(info.value) is expected, f"{type(info.value).__name__}: {info.value}"
            assert info.value.message and "\n" not in info.value.message
            assert len(info.value.message) < 300
            assert info.value.code == expected.code
            assert row_counts(any_workspace) == before
            assert runs.get_run(run_id) == stored
            assert cauce.active_run() is None


def test_runs_cannot_start_in_a_deleted_experiment(any_workspace: Workspace) -> None:
    runs.create_run("gone")
    experiments.delete_experiment("gone")
    before = row_counts(any_workspace)
    with pytest.raises(NotFound, match="gone"):
        runs.create_run("gone")
    with pytest.raises(NotFound, match="gone"):
        cauce.start_run(experiment="gone")
    assert row_counts(any_workspace) == before
    assert cauce.active_run() is None


def test_runs_start_in_the_set_experiment_unless_they_name_one(any_workspace: Workspace) -> None:
    chosen = cauce.set_experiment("churn")  # created: it did not exist
    assert cauce.set_experiment("churn").experiment_id == chosen.experiment_id
    with cauce.start_run() as run, cauce.start_run(nested=True) as child:
        pass
    with cauce.start_run(experiment="other") as other:
        pass
    assert runs.get_run(run.run_id).info.experiment_id == chosen.experiment_id
    assert runs.get_run(child.run_id).info.experiment_id == chosen.experiment_id
    assert runs.get_run(other.run_id).info.experiment_id != chosen.experiment_id
    experiments.delete_experiment("churn")
    with pytest.raises(Conflict, match="'churn' is deleted"):
        cauce.set_experiment("churn")
    with pytest.raises(InvalidInput, match="'a/b'"):
        cauce.set_experiment("a/b")
    experiments.restore_experiment("churn")
    assert cauce.set_experiment("churn").lifecycle_stage == "active"


def test_last_active_run_is_the_active_one_then_the_one_ended_last(
    any_workspace: Workspace,
) -> None:
    assert cauce.last_active_run() is None
    with cauce.start_run(run_name="first") as first:
        active = cauce.last_active_run()
        assert active is not None and active.info.run_id == first.run_id
    with pytest.raises(ValueError, match="boom"), cauce.start_run(run_name="second") as second:
        raise ValueError("boom")
    last = cauce.last_active_run()
    assert last is not None and (last.info.run_id, last.info.status) == (second.run_id, "FAILED")


def test_invalid_key_errors_name_the_key(any_workspace: Workspace) -> None:
    run_id = runs.create_run("e").run_id
    with pytest.raises(InvalidInput, match="251 characters"):
        runs.log_metric(run_id, LONG_KEY, 1.0)
    with pytest.raises(InvalidInput, match=r"a/\.\./b"):
        runs.set_tags(run_id, {"a/../b": "x"})
    with pytest.raises(InvalidInput, match="'bad'"):
        runs.log_metrics(run_id, {"good": 1.0, "bad": "x"})
    with pytest.raises(NotFound, match=MISSING):
        runs.log_metric(MISSING, "m", 1.0)
    with pytest.raises(InvalidInput, match="'a/b'"):
        experiments.create_experiment("a/b")
    with pytest.raises(InvalidInput, match="step must fit in 64 bits"):
        runs.log_metric(run_id, "m", 1.0, step=-(2**63) - 1)


# -- concurrency ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_writers_creating_one_new_experiment_share_it(
    local_workspace: Workspace, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes that start the first run of an experiment at once: both runs land in it."""
    import threading

    from sqlalchemy import text

    from cauce import workspace as workspace_module
    from cauce.config import load_settings

    monkeypatch.setenv("CAUCE_DB_URL", pg_url)
    workspace_module.reset()
    ws = workspace_module.current()
    ws.store.upgrade()
    other = Workspace(load_settings())  # a second store: another process, as far as the DB knows
    result: dict[str, Any] = {}

    def second_writer() -> None:
        try:
            result["run"] = runs.create_run("race", workspace=other)
        except BaseException as exc:  # reported by the main thread
            result["error"] = exc

    try:
        with ws.store.fast_write() as tx:
            first_id = experiments.resolve_experiment_id(tx, ws, "race")
            thread = threading.Thread(target=second_writer)
            thread.start()
            # Wait until the second writer is blocked on our uncommitted experiment row.
            deadline = time.monotonic() + 30
            while "error" not in result:
                with ws.store.read() as probe:
                    waiting = probe.execute(
                        text(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        )
                    ).scalar()
                if waiting:
                    break
                assert time.monotonic() < deadline, "the second writer never waited"
                time.sleep(0.02)
        thread.join(30)
    finally:
        other.close()
    assert "error" not in result, result.get("error")
    assert result["run"].experiment_id == first_id
    assert [e.name for e in experiments.list_experiments()] == ["race"]
    created = audit.events(ws, action="experiment.create")
    assert len(created) == 1, [(e.entity_id, e.at, e.after) for e in created]
