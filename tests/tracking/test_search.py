"""search_runs: the filter language, ordering, limits, experiments, bad and hostile input.

Every test that queries runs on SQLite and on PostgreSQL (``any_workspace``), so that both
backends give the same answers (LIKE is case-sensitive on both, for instance).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cauce
from cauce.errors import InvalidInput, NotFound
from cauce.tracking import search
from cauce.tracking.entities import Run
from cauce.workspace import Workspace
from stored import row_counts

CHURN = ("baseline", "tuned", "Tuned_2", "pending")


def build_corpus() -> dict[str, str]:
    """Five runs in two experiments; returns ``{name: run id}`` (``other/baseline`` for the 5th).

    ============  =========  ==========  ========  ==================  ==========
    run           status     auc         val loss  params              tags
    ============  =========  ==========  ========  ==================  ==========
    baseline      FINISHED   0.70 (*)    0.4       C=0.5 model=logreg  team=Growth, data set=v1
    tuned         FINISHED   0.93 (**)   0.2       C=1.0 model=forest  team=growth, note=it's 100%
    Tuned_2       FAILED     NaN                   C=10                team=risk
    pending       KILLED
    other/base..  FINISHED   0.99                  C=0.5               team=growth
    ============  =========  ==========  ========  ==================  ==========

    (*) 0.95 at step 0, then 0.70 at step 1. (**) 0.99 at step 1; 0.80 then 0.93 at step 2
    (logged with older then newer timestamps): the latest value is that of the highest step,
    then the newest.
    """
    ids = {}
    with cauce.start_run("churn", "baseline", tags={"team": "Growth", "data set": "v1"}) as run:
        cauce.log_params({"C": 0.5, "model": "logreg"})
        cauce.log_metric("auc", 0.95, step=0)
        cauce.log_metric("auc", 0.70, step=1)
        cauce.log_metric("val loss", 0.4)
    ids["baseline"] = run.run_id
    with cauce.start_run("churn", "tuned", tags={"team": "growth", "note": "it's 100%"}) as run:
        cauce.log_params({"C": "1.0", "model": "forest"})
        cauce.log_metric("auc", 0.99, step=1, timestamp=3000)
        cauce.log_metric("auc", 0.93, step=2, timestamp=2000)
        cauce.log_metric("auc", 0.80, step=2, timestamp=1000)
        cauce.log_metric("val loss", 0.2)
    ids["tuned"] = run.run_id
    run = cauce.start_run("churn", "Tuned_2", tags={"team": "risk"})
    cauce.log_params({"C": 10})
    cauce.log_metric("auc", float("nan"))
    cauce.end_run("FAILED")
    ids["Tuned_2"] = run.run_id
    run = cauce.start_run("churn", "pending")
    cauce.end_run("KILLED")
    ids["pending"] = run.run_id
    with cauce.start_run("other", "baseline", tags={"team": "growth"}) as run:
        cauce.log_params({"C": 0.5})
        cauce.log_metric("auc", 0.99)
    ids["other/baseline"] = run.run_id
    return ids


def names(runs: Iterable[Run], ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[r.info.run_id] for r in runs]


def test_filters_on_metrics_params_tags_and_attributes(
    any_workspace: Workspace, subtests: pytest.Subtests
) -> None:
    ids = build_corpus()
    started = {n: cauce.get_run(i).info.start_time for n, i in ids.items()}
    cases: list[tuple[str, set[str]]] = [
        # metrics: the latest value (highest step, then newest); NaN and missing match nothing
        ("metrics.auc > 0.8", {"tuned"}),
        ("metrics.auc < 0.8", {"baseline"}),
        ("metrics.auc >= 0.7 AND metrics.auc <= 0.7", {"baseline"}),
        ("metrics.auc = 0.93", {"tuned"}),
        ("metrics.auc != 0.7", {"tuned"}),
        ("metrics.auc <> 0.7", {"tuned"}),
        ("metrics.auc IN (0.7, 0.93, 1)", {"baseline", "tuned"}),
        ("metrics.auc NOT IN (0.7)", {"tuned"}),
        ("metrics.auc > -1e999", {"baseline", "tuned"}),
        ("metrics.auc < 99999999999999999999999", {"baseline", "tuned"}),
        ("metric.auc > .9", {"tuned"}),
        ('metrics."val loss" < 0.3', {"tuned"}),
        ("metrics.`val loss` >= 0.3", {"baseline"}),
        ("metrics.missing > 0", set()),
        # params compare as text
        ("params.C = '0.5'", {"baseline"}),
        ("params.C = 0.5", {"baseline"}),
        ("params.C != '0.5'", {"tuned", "Tuned_2"}),
        ("params.C IN ('0.5', '10')", {"baseline", "Tuned_2"}),
        ("params.C NOT IN ('0.5', '10')", {"tuned"}),
        ("param.model LIKE '%o%'", {"baseline", "tuned"}),
        # tags; LIKE is case-sensitive, ILIKE is not; a run without the tag never matches
        ("tags.team = 'growth'", {"tuned"}),
        ("tags.team LIKE 'G%'", {"baseline"}),
        ("tags.team LIKE 'g%'", {"tuned"}),
        ("tags.team ILIKE 'G%'", {"baseline", "tuned"}),
        ("tags.team NOT LIKE 'g%'", {"baseline", "Tuned_2"}),
        ("tags.team NOT ILIKE 'g%'", {"Tuned_2"}),
        ("tags.team LIKE 'gr_wth'", {"tuned"}),
        ("tags.\"data set\" = 'v1'", {"baseline"}),
        ("tags.note = 'it''s 100%'", {"tuned"}),
        (r"tags.note = 'it\'s 100%'", {"tuned"}),
        (r"tags.note LIKE '%100\\%'", {"tuned"}),
        (r"tags.note LIKE '%1\\%'", set()),
        # attributes, with or without their prefix
        ("status = 'FAILED'", {"Tuned_2"}),
        ("attributes.status IN ('FINISHED', 'KILLED')", {"baseline", "tuned", "pending"}),
        ("attribute.status NOT IN ('FINISHED')", {"Tuned_2", "pending"}),
        ("run_name = 'tuned'", {"tuned"}),
        ("run_name LIKE 't%'", {"tuned"}),
        ("run_name LIKE 'T%'", {"Tuned_2"}),
        ("run_name LIKE '_uned%'", {"tuned", "Tuned_2"}),
        (r"run_name LIKE '%\\_%'", {"Tuned_2"}),
        ("attributes.run_name ILIKE 'TUNED%'", {"tuned", "Tuned_2"}),
        ("attributes.run_name NOT LIKE '%uned%'", {"baseline", "pending"}),
        (f"run_id = '{ids['pending']}'", {"pending"}),
        (
            f"start_time >= {started['Tuned_2']}",
            {n for n in CHURN if started[n] >= started["Tuned_2"]},
        ),
        (f"attributes.start_time < {started['baseline']}", set()),
        # a fractional bound is not rounded to the column's integer type
        (f"start_time > {started['baseline'] - 0.5}", set(CHURN)),
        (
            f"start_time < {started['baseline'] + 0.5}",
            {n for n in CHURN if started[n] <= started["baseline"]},
        ),
        ("end_time > 0", set(CHURN)),
        ("end_time < 99999999999999999999999", set(CHURN)),
        ("end_time > -1e999", set(CHURN)),
        ("metrics.auc IN (0.7, 2147483648, 9223372036854775808)", {"baseline"}),
        ("metrics.auc NOT IN (2147483648)", {"baseline", "tuned"}),
        ("user = 'tester'", set(CHURN)),
        # AND binds tighter than OR; parentheses group; keywords ignore case
        ("params.C = '10' OR tags.team = 'growth' AND metrics.auc > 0.95", {"Tuned_2"}),
        ("(params.C = '10' OR tags.team = 'growth') AND metrics.auc > 0.9", {"tuned"}),
        ("params.C = '10' or (tags.team = 'growth' and metrics.auc > 0.9)", {"tuned", "Tuned_2"}),
        ("((status = 'KILLED'))", {"pending"}),
        ("status = 'KILLED' OR status = 'FAILED' AND params.C = '10'", {"pending", "Tuned_2"}),
        ("", set(CHURN)),
        ("   ", set(CHURN)),
    ]
    for text, expected in cases:
        with subtests.test(text):
            assert set(names(cauce.search_runs("churn", filter=text), ids)) == expected

    # LIKE patterns differ only in their value: each query gets its own pattern.
    for pattern, expected_name in (("b%", "baseline"), ("p%", "pending"), ("t%", "tuned")):
        found = cauce.search_runs("churn", filter=f"run_name LIKE '{pattern}'")
        assert names(found, ids) == [expected_name]


def test_order_by_max_results_and_experiments(any_workspace: Workspace) -> None:
    ids = build_corpus()
    desc = names(cauce.search_runs("churn", order_by=["metrics.auc DESC"]), ids)
    assert desc[:2] == ["tuned", "baseline"] and set(desc[2:]) == {"Tuned_2", "pending"}
    asc = names(cauce.search_runs("churn", order_by=["metrics.auc ASC"]), ids)
    assert asc[:2] == ["baseline", "tuned"] and set(asc[2:]) == {"Tuned_2", "pending"}
    assert names(cauce.search_runs("churn", order_by="params.C"), ids) == [
        "baseline",
        "tuned",
        "Tuned_2",
        "pending",
    ]
    assert names(cauce.search_runs("churn", order_by=["params.C desc"]), ids) == [
        "Tuned_2",
        "tuned",
        "baseline",
        "pending",
    ]
    assert names(
        cauce.search_runs("churn", order_by=["metrics.`val loss` ASC", "run_name DESC"]), ids
    ) == ["tuned", "baseline", "pending", "Tuned_2"]
    assert names(cauce.search_runs("churn", order_by=["metrics.auc DESC"], max_results=2), ids) == [
        "tuned",
        "baseline",
    ]
    assert len(cauce.search_runs("churn", max_results=1)) == 1
    # Default order: newest first.
    newest = cauce.search_runs(None)
    assert [r.info.start_time for r in newest] == sorted(
        (r.info.start_time for r in newest), reverse=True
    )

    other = cauce.get_experiment("other").experiment_id
    assert names(cauce.search_runs("other"), ids) == ["other/baseline"]
    assert names(cauce.search_runs(other), ids) == ["other/baseline"]
    assert set(names(cauce.search_runs(["churn", other]), ids)) == set(ids)
    assert set(names(cauce.search_runs(), ids)) == set(ids)
    assert set(names(cauce.search_runs(None, filter="params.C = '0.5'"), ids)) == {
        "baseline",
        "other/baseline",
    }
    found = cauce.search_runs("churn", filter="metrics.auc > 0.8")[0]
    assert found.data.metrics["auc"] == 0.93 and found.data.params["C"] == "1.0"
    with pytest.raises(NotFound, match="'missing' does not exist"):
        cauce.search_runs("missing")
    with pytest.raises(NotFound, match="'missing'"):
        cauce.search_runs(["churn", "missing"])
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidInput, match="max_results") as caught:
            cauce.search_runs("churn", max_results=bad)  # type: ignore[arg-type]
        assert caught.value.details == {"field": "max_results"}


def test_datasets_a_run_read_are_filtered_by_name_digest_and_context(
    any_workspace: Workspace,
) -> None:
    import pandas as pd

    from cauce.tracking.entities import DatasetReference
    from cauce.tracking.runs import record_dataset_references

    held = cauce.data.register("churn", pd.DataFrame({"tenure": [1, 2, 3]}))
    with cauce.start_run(experiment="data", run_name="held"):
        cauce.log_input(held, context="training")
    with cauce.start_run(experiment="data", run_name="described") as second:
        pass
    lake = DatasetReference("lake-churn", "ab12cd34", "eval", "s3", "s3://lake/churn.parquet")
    record_dataset_references(second.info.run_id, [lake])
    with cauce.start_run(experiment="data", run_name="none"):
        pass

    def names(text: str) -> set[str]:
        return {r.info.run_name for r in cauce.search_runs("data", filter=text)}

    assert names("datasets.name = 'churn'") == {"held"}
    assert names("datasets.name LIKE '%churn'") == {"held", "described"}
    assert names("datasets.context = 'eval'") == {"described"}
    assert names("datasets.digest = 'ab12cd34'") == {"described"}
    assert names(f"datasets.digest = '{held.content_hash[:16]}'") == {"held"}
    assert names("datasets.name IN ('churn', 'x') AND run_name = 'held'") == {"held"}
    assert names("datasets.name != 'churn'") == {"described"}  # some dataset of it is not
    with pytest.raises(InvalidInput, match="unknown dataset field 'rows'"):
        cauce.search_runs(filter="datasets.rows = '3'")
    with pytest.raises(InvalidInput, match="many datasets") as caught:
        cauce.search_runs(order_by=["datasets.name"])
    assert caught.value.details["field"] == "order_by"


def test_a_dataframe_of_runs_as_mlflow_lays_it_out(workspace: Workspace) -> None:
    ids = build_corpus()
    frame = cauce.search_runs("churn", order_by=["metrics.auc DESC"], output_format="pandas")
    assert list(frame.columns) == [
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "start_time",
        "end_time",
        "user_id",
        "parent_run_id",
        "artifact_uri",
        "metrics.auc",
        "metrics.val loss",
        "params.C",
        "params.model",
        "tags.data set",
        "tags.note",
        "tags.team",
    ]
    listed = cauce.search_runs("churn", order_by=["metrics.auc DESC"])
    assert list(frame["run_id"]) == [r.info.run_id for r in listed]
    assert names(listed, ids)[:2] == ["tuned", "baseline"]
    tuned, baseline = frame.iloc[0], frame.iloc[1]
    assert tuned["metrics.auc"] == 0.93 and tuned["params.C"] == "1.0"
    assert tuned["tags.note"] == "it's 100%" and tuned["artifact_uri"] == f"runs:/{ids['tuned']}"
    assert baseline["tags.data set"] == "v1" and frame["tags.note"].isna().sum() == 3
    # A run without the metric, or whose latest value is NaN, is NaN; times are UTC.
    assert frame["metrics.auc"].isna().sum() == 2 and frame["metrics.val loss"].isna().sum() == 2
    assert str(frame["start_time"].dt.tz) == "UTC"
    started = cauce.get_run(ids["tuned"]).info.start_time
    assert tuned["start_time"].timestamp() * 1000 == pytest.approx(started)
    assert frame.sort_values("metrics.auc")["run_name"].iloc[0] == "baseline"

    empty = cauce.search_runs("churn", filter="metrics.auc > 2", output_format="pandas")
    assert empty.empty and list(empty.columns) == list(frame.columns[:9])
    with pytest.raises(InvalidInput, match="output_format must be list or pandas"):
        cauce.search_runs("churn", output_format="json")  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("metrics.auc >", 13, "unexpected end"),
        ("metrics.auc > 0.5 AND", 21, "unexpected end"),
        ("metrics.auc ~ 1", 12, "unexpected '~'"),
        ("foo = 1", 0, "unknown field 'foo'"),
        ("metrics = 1", 0, "unknown field 'metrics'"),
        ("attributes.colour = 'red'", 0, "unknown attribute 'colour'"),
        ("things.x = 1", 0, "unknown field prefix 'things'"),
        ("metrics.auc > 'high'", 14, "numeric; compare it with a number"),
        ("metrics.auc LIKE '1%'", 12, "numeric; LIKE applies to text"),
        ("params.C > '1'", 9, "text; use =, !=, LIKE, ILIKE or IN"),
        ("status = FINISHED", 9, "expected a number or a 'quoted string'"),
        ("metrics.auc IN 1", 15, "IN needs a parenthesised list"),
        ("metrics.auc IN (1, 2", 20, "unexpected end"),
        ("metrics.auc IN ()", 16, "expected a number"),
        ("(metrics.auc > 1", 16, "unexpected end"),
        ("(metrics.auc > 1 metrics.auc", 17, "expected ')'"),
        ("metrics.auc > 1 metrics.auc < 2", 16, "unexpected 'metrics.auc'"),
        ("run_name = 'unterminated", 11, 'unexpected "\'"'),
        ("run_name = 'x'; DROP TABLE runs", 14, "unexpected ';'"),
        ("run_name LIKE 'a\\\\'", 14, "unpaired escape"),
        ("run_name = 'a\0'", 13, "not allowed"),
        ("metrics. > 1", 9, "expected a key"),
        ("run_name NOT = 'a'", 13, "expected an operator"),
        ("(" * 40 + "status = 'x'" + ")" * 40, 32, "nested parentheses"),
        (" OR ".join(["status = 'x'"] * 201), 200 * 16, "more than 200 comparisons"),
    ],
)
def test_parse_errors_are_invalid_input_naming_the_position(
    workspace: Workspace, text: str, position: int, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        cauce.search_runs(filter=text)
    assert message in caught.value.message
    assert f"at position {position}" in caught.value.message
    assert caught.value.details == {"field": "filter", "position": position}


def test_bad_order_by_and_filter_types_are_invalid_input(workspace: Workspace) -> None:
    for order_by, message in (
        (["metrics.auc UP"], "expected ASC or DESC"),
        (["metrics.auc DESC extra"], "unexpected text"),
        ([""], "non-empty strings"),
        ([None], "non-empty strings|order_by.0: Input should be a valid string"),
        (["nothing"], "unknown field"),
        (["run_name; DROP TABLE runs"], "unexpected ';'"),
    ):
        with pytest.raises(InvalidInput, match=message) as caught:
            cauce.search_runs(order_by=order_by)  # type: ignore[arg-type]
        # Named as the order, not as the filter (the CLI's `-o foo` said "filter: ...").
        assert caught.value.details["field"].startswith("order_by"), caught.value.details
        assert not caught.value.message.startswith("filter")
    with pytest.raises(InvalidInput, match=r"filter must be a string|filter: Input should be"):
        cauce.search_runs(filter=42)  # type: ignore[arg-type]
    values = ", ".join(["1"] * (search.MAX_VALUES + 1))
    with pytest.raises(InvalidInput, match="more than"):
        cauce.search_runs(filter=f"metrics.auc IN ({values})")


INJECTIONS: list[tuple[str, set[str] | None]] = [
    # (filter, the runs it must find — or None: it must be an InvalidInput)
    ("params.C = '0.5'; DROP TABLE runs", None),
    ("params.C = '0.5'; DROP TABLE runs; --", None),
    ("params.C = '0.5''; DROP TABLE runs; --'", set()),
    ("params.C = '0.5\\'; DROP TABLE runs; --'", set()),
    ("params.C = '' OR '1'='1'", None),
    ("params.C = '\\' OR \\'1\\'=\\'1'", set()),
    ("params.C = 'x' OR 1=1", None),
    ("params.C = 'x' OR params.C LIKE '%' --", None),
    ("params.C = 'x' /* comment */", None),
    ("run_name = 'baseline' -- AND status = 'FAILED'", None),
    ("run_name = 'baseline' # comment", None),
    ("status = 'FINISHED' UNION SELECT * FROM runs", None),
    ("status IN ('x'); DELETE FROM runs; --", None),
    ("status = 'x'); DELETE FROM runs WHERE ('1'='1", None),
    ("metrics.\"auc' OR '1'='1\" > 0", set()),
    ('metrics."auc\\" OR 1=1 --" > 0', set()),
    ("tags.`team' OR '1'='1` = 'growth'", set()),
    ("tags.`team = tags.team` = 'growth'", set()),
    ("params.`C\"; DROP TABLE runs; --` = '0.5'", set()),
    ("run_name = 'baseline\0' OR 1=1", None),
    ("run_name LIKE '%' ESCAPE '\\'", None),
    ("run_name = CHAR(98)", None),
    ("run_name = (SELECT name FROM runs)", None),
    ("attributes.status = 'FAILED' OR attributes.\"1=1\" = '1'", None),
    ("tags.team = 'risk' OR run_name = 'x''||(SELECT name FROM runs LIMIT 1)||'''", {"Tuned_2"}),
    ("params.C = '10' AND 1", None),
]


def test_injection_attempts_neither_alter_nor_leak(
    any_workspace: Workspace, subtests: pytest.Subtests
) -> None:
    ids = build_corpus()
    counts = row_counts(any_workspace)
    for text, expected in INJECTIONS:
        with subtests.test(text):
            if expected is None:
                with pytest.raises(InvalidInput):
                    cauce.search_runs("churn", filter=text)
            else:
                assert set(names(cauce.search_runs("churn", filter=text), ids)) == expected
            for order_by in ([text], [f"run_name {text}"]):
                with contextlib.suppress(InvalidInput):
                    cauce.search_runs("churn", order_by=order_by)
            assert row_counts(any_workspace) == counts
    assert set(names(cauce.search_runs(), ids)) == set(ids)


NUMERIC_FIELDS = [
    "metrics.auc",
    'metrics."val loss"',
    "metrics.`a b`",
    "start_time",
    "attributes.end_time",
]
TEXT_FIELDS = [
    "params.C",
    "tags.team",
    "tags.`data set`",
    "run_name",
    "attributes.status",
    "run_id",
    "experiment_id",
    "user",
]
BAD_FIELDS = ["metrics.", "params", "nothing.x", "metrics.auc.", "`x`", "'run_name'"]
COMPARE = ["=", "!=", "<>", "<", "<=", ">", ">="]
TEXT_OPS = ["=", "!=", "LIKE", "ILIKE", "NOT LIKE", "not ilike"]
BAD_OPS = ["~", "==", "NOT", "IS", "BETWEEN", ""]
JUNK = [
    "(",
    ")",
    "AND",
    "OR",
    "and",
    "or",
    ";",
    "--",
    "/*",
    "*/",
    "'",
    '"',
    "`",
    "\\",
    "%",
    "\0",
    "DROP TABLE runs",
    "UNION SELECT",
    ",",
    "1=1",
    "' OR '1'='1",
]


def quoted(text: str) -> str:
    """``text`` as a filter string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def in_list(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=4).map(lambda xs: "(" + ", ".join(xs) + ")")


_numbers = st.one_of(
    st.integers().map(str),
    st.integers(min_value=2**63 - 2, max_value=10**30).map(str),  # past 64-bit integers
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e999", "-1e999", ".5", "1.", "-0", "9" * 400, "-" + "9" * 30]),
)
_strings = st.one_of(
    st.text(max_size=10).map(quoted),
    st.text(alphabet="%_\\'ab\0", max_size=6).map(quoted),  # wildcards, escapes, NUL
    st.text(alphabet="%_\\ab", max_size=6).map(lambda s: f"'{s}'"),  # unpaired escapes too
)
_comparisons = st.one_of(
    st.tuples(st.sampled_from(NUMERIC_FIELDS), st.sampled_from(COMPARE), _numbers),
    st.tuples(
        st.sampled_from(NUMERIC_FIELDS), st.sampled_from(["IN", "NOT IN"]), in_list(_numbers)
    ),
    st.tuples(st.sampled_from(TEXT_FIELDS), st.sampled_from(TEXT_OPS), _strings),
    st.tuples(st.sampled_from(TEXT_FIELDS), st.sampled_from(["IN", "not in"]), in_list(_strings)),
    st.tuples(  # anything with anything
        st.sampled_from(NUMERIC_FIELDS + TEXT_FIELDS + BAD_FIELDS),
        st.sampled_from(COMPARE + TEXT_OPS + BAD_OPS + ["IN"]),
        st.one_of(_numbers, _strings, in_list(_numbers | _strings), st.text(max_size=5)),
    ),
).map(" ".join)
_filters = st.one_of(
    st.text(max_size=40),
    st.recursive(
        _comparisons,
        lambda inner: st.tuples(inner, st.sampled_from([" AND ", " or ", " OR "]), inner).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        max_leaves=6,
    ),
    st.lists(
        st.one_of(_comparisons, st.sampled_from(JUNK), st.text(max_size=6)),
        min_size=1,
        max_size=6,
    ).map(" ".join),
)


def test_random_filters_raise_only_invalid_input_and_change_nothing(
    any_workspace: Workspace,
) -> None:
    ids = set(build_corpus().values())
    counts = row_counts(any_workspace)

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        text=_filters,
        order=st.one_of(
            st.none(),
            st.text(max_size=20),
            st.tuples(
                st.sampled_from(NUMERIC_FIELDS + TEXT_FIELDS + BAD_FIELDS),
                st.sampled_from(["", " ASC", " desc", " DOWN", "; --"]),
            ).map("".join),
        ),
    )
    def check(text: str, order: str | None) -> None:
        for kwargs in ({"filter": text}, {"order_by": [order]} if order else {}):
            try:
                found = cauce.search_runs(None, **kwargs)  # type: ignore[arg-type]
            except InvalidInput:
                continue
            assert {r.info.run_id for r in found} <= ids

    check()
    assert row_counts(any_workspace) == counts
