"""The CLI's way of writing a measured time, the same for runs, traces, spans, steps and
monitor runs, and the same as the web UI's."""

from __future__ import annotations

import pytest

from cauce.cli.output import duration, took
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
