"""The CLI's way of writing a measured time, the same for runs, traces, spans, steps and
monitor runs, and the same as the web UI's; and its tables in a terminal too narrow for them."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from cauce.cli import output
from cauce.cli.output import changes, duration, took, when
from cauce.server import formats


@pytest.mark.parametrize(
    ("milliseconds", "shown"),
    [
        (0.25, "0.25 ms"),  # a span faster than a millisecond is not "0 ms"
        (0, "<1 ms"),  # nor is a step kept in whole milliseconds
        (26.684, "26.68 ms"),
        (812, "812 ms"),
        (7938.2, "7.9 s"),  # not "7938.2 ms"
        (185_000, "3 min 5 s"),
        (7_500_000, "2 h 5 min"),
        (None, "—"),
    ],
)
def test_a_measured_time_reads_in_its_unit(milliseconds: float | None, shown: str) -> None:
    assert took(milliseconds) == shown
    if milliseconds is not None:  # the web UI writes it the same way
        assert formats.took(milliseconds) == shown


def test_a_runs_duration_is_read_the_same_way() -> None:
    assert (
        duration(1_000, 8_500),
        duration(1_000, 1_040),
        duration(1_000, 1_000),
        duration(None, 5),
    ) == ("7.5 s", "40 ms", "<1 ms", "—")


RUN_IDS = ["2d7e3e130f47467ca0404bb55a983369", "35339e0723dd458bad375197e80d8492"]
RUNS = [
    [RUN_IDS[0], "broken-candidate", "FINISHED", "2026-12-07 06:58:52", "26 ms", None, None],
    [RUN_IDS[1], "gradient_boosting", "FINISHED", "2026-12-07 06:58:12", "64 ms", 0.7686, 0.8113],
]
RUN_COLUMNS = ["Run ID", "Name", "Status", "Started", "Duration", "accuracy", "roc_auc"]


def printed(monkeypatch: pytest.MonkeyPatch, width: int, *args: object, **kwargs: object) -> str:
    """What ``output.table`` prints in a terminal ``width`` columns wide."""
    screen = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=screen, width=width, highlight=False))
    output.table(*args, **kwargs)  # type: ignore[arg-type]
    lines = screen.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width, screen.getvalue()
    return screen.getvalue()


def test_a_wide_enough_terminal_shows_the_table_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = printed(monkeypatch, 140, "Runs", RUN_COLUMNS, RUNS, short_ids=True, optional=2)
    assert all(run_id in shown for run_id in RUN_IDS)
    assert "2026-12-07 06:58:52" in shown and "0.8113" in shown and "Left out" not in shown


def test_a_narrow_terminal_cuts_ids_then_leaves_out_optional_columns_never_a_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At 80 columns ``cauce runs list`` folded FINISHED into FIN/ISH/ED and a date over four
    lines to make room for a whole run id."""
    shown = printed(monkeypatch, 80, "Runs", RUN_COLUMNS, RUNS, short_ids=True, optional=2)
    rows = [line for line in shown.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in rows] == ["2d7e3e13", "", "35339e07", ""]
    words = {w for line in rows for cell in line.split("│") for w in cell.split()}
    assert {"broken-candidate", "gradient_boosting", "FINISHED", "2026-12-07", "ms"} <= words
    assert "accuracy" in shown and "0.7686" in shown  # what fits stays
    assert "Left out at 80 columns: roc_auc (a wider terminal, or --json, shows them)." in shown

    narrower = printed(monkeypatch, 70, "Runs", RUN_COLUMNS, RUNS, short_ids=True, optional=2)
    assert "Left out at 70 columns: accuracy, roc_auc" in narrower


def test_ids_stay_whole_where_the_command_does_not_take_their_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    columns = ["ID", "Name", "Stage", "Created"]
    experiments = [[RUN_IDS[0], "churn forecasting by region", "active", "2026-12-07 06:58:11"]]
    shown = printed(monkeypatch, 76, "Experiments", columns, experiments)
    assert RUN_IDS[0] in shown and "2026-12-07" in shown and "06:58:11" in shown
    assert "Left out" not in shown


def test_when_words_must_fold_the_long_ones_fold_first(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = ["Name", "Target", "Reference", "Signals", "Schedule", "Last run"]
    monitor = [
        "churn-drift",
        "endpoint churn",
        "models:/churn@champion",
        "data_drift, prediction_drift, data_quality, model_performance",
        "*/5 * * * *",
        "2026-12-07 06:58:33",
    ]
    shown = printed(monkeypatch, 74, "Monitors", columns, [monitor])
    cells = " ".join(shown.split("│"))
    for whole in ("churn-drift", "endpoint", "Reference", "Schedule", "2026-12-07", "06:58:33"):
        assert re.search(rf"(^|\s){re.escape(whole)}(\s|$)", cells), (whole, shown)
    assert "model_performance" not in cells  # the long words are the ones cut


def test_an_audit_change_shows_times_as_times_and_digests_short() -> None:
    before = {"status": "RUNNING", "end_time": None, "content_hash": None}
    after = {"status": "FINISHED", "end_time": 1796626692125, "content_hash": "9" * 64}
    assert changes(before, after) == (
        f"content_hash: — → {'9' * 12}…; end_time: — → {when(1796626692125)}; "
        "status: RUNNING → FINISHED"
    )


def test_prose_folds_before_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollout's decisions at 80 columns folded the controller's name with the reasons."""
    columns = ["When", "Stage", "Decision", "Measured", "Reason", "By"]
    decision = [
        "2026-12-07 06:59:00",
        "1",
        "fail",
        "error_rate=0, latency_p99_ms=5.968, prediction_drift=0.5556, requests=39",
        "prediction_drift 0.5556 > max 0.2",
        "cauce-controller",
    ]
    shown = printed(monkeypatch, 80, "Decisions", columns, [decision])
    assert "│ cauce-controller │" in shown and "│ 2026-12-07 │" in shown


def test_many_columns_left_out_are_counted_past_the_first_eight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = [f"metric_{n:02}" for n in range(12)]
    row = [RUN_IDS[0], "fit", "FINISHED", "2026-12-07 06:58:52", "26 ms", *["0.5"] * 12]
    shown = printed(monkeypatch, 80, "Runs", RUN_COLUMNS[:5] + metrics, [row], optional=12)
    left = shown[shown.index("Left out") :]
    assert " ".join(left.split()).startswith(
        "Left out at 80 columns: metric_00, metric_01, metric_02, metric_03, metric_04, "
        "metric_05, metric_06, metric_07 and 4 more (a wider terminal, or --json, shows them)."
    )


def test_a_comparison_with_an_empty_header_fits_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """`cauce runs compare` names its first column ""; folding words for it raised TypeError."""
    columns = ["", "gradient_boosting_classifier", "random_forest_classifier", "logistic_model"]
    rows = [
        ["*params.learning_rate", "0.08", "—", "—"],
        ["*metrics.roc_auc", "0.8113", "0.8112", "0.8179"],
    ]
    shown = printed(monkeypatch, 60, "Run comparison", columns, rows)
    assert "0.8179" in shown
