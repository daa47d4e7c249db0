"""Check suites and the quality bar: parsing, every check kind against pandas, storage, promotion.

Tests that run suites use ``any_workspace`` (SQLite, PostgreSQL, then a server); parsing tests
need no workspace. Every verdict is compared with the same rule computed in pandas on the same
data.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import cauce
from cauce.data.checks import SAMPLE_ROWS, ValidationResult
from cauce.data.suites import CheckSuite, load_suite
from cauce.errors import Conflict, InvalidInput, QualityGateFailed
from cauce.lineage import audit
from cauce.lineage.graph import walk
from cauce.store.schema import check_results
from cauce.workspace import Workspace
from remote import server_side
from stored import row_count

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
DEMO_CSV = Path(cauce.__file__).parent / "demo" / "data" / "customers.csv.gz"
AS_OF = "2024-03-05T00:00:00"


def orders(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """A seeded table with known flaws: nulls, repeats, odd values, out-of-range numbers."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "order_id": np.arange(n, dtype="int64"),
            "customer": [f"C{i % 7:03d}" for i in range(n)],
            "amount": rng.normal(50, 30, n).round(2),
            "currency": rng.choice(["EUR", "USD", "GBP"], n),
            "placed_at": pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(n), unit="h"),
        }
    )
    frame.loc[[3, 11], "order_id"] = 5  # 5 appears three times
    frame.loc[[4, 9, 20], "currency"] = None
    frame.loc[[6], "currency"] = "XXX"
    frame.loc[[8, 30], "customer"] = "bad-id"
    frame.loc[[2, 13], "amount"] = -1.0
    return frame


def people(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"customer": [f"C{i:03d}" for i in range(n)]})


def suite(*checks: dict[str, Any], name: str = "s") -> CheckSuite:
    return CheckSuite.model_validate({"kind": "CheckSuite", "name": name, "checks": list(checks)})


def by_name(result: ValidationResult) -> dict[str, Any]:
    return {c.name: c for c in result.checks}


# -- every kind, against pandas -----------------------------------------------------------------


def pandas_failing(frame: pd.DataFrame, refs: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:
    """For each check of ALL_CHECKS, which rows fail it, computed in pandas."""
    amount, currency, customer = frame["amount"], frame["currency"], frame["customer"]
    return {
        "not_null(currency)": currency.isna(),
        "unique(order_id)": frame["order_id"].duplicated(keep=False),
        "accepted_values(currency)": currency.notna() & ~currency.isin(["EUR", "USD", "GBP"]),
        "range(amount)": amount.notna() & ~((amount >= 0) & (amount < 100)),
        "regex(customer)": customer.notna() & ~customer.str.fullmatch(r"C\d{3}").astype(bool),
        "relationships(customer -> people.customer)": customer.notna()
        & ~customer.isin(refs["people"]["customer"]),
        "positive EUR": ~((amount > 0) & (currency == "EUR")).fillna(False).astype(bool),
    }


ALL_CHECKS: list[dict[str, Any]] = [
    {"not_null": {"column": "currency"}},
    {"unique": {"column": "order_id"}},
    {"accepted_values": {"column": "currency", "values": ["EUR", "USD", "GBP"]}},
    {"range": {"column": "amount", "min": 0, "max": 100, "max_inclusive": False}},
    {"regex": {"column": "customer", "pattern": r"C\d{3}"}},
    {"relationships": {"column": "customer", "to": "people", "field": "customer"}},
    {"name": "positive EUR", "sql": "amount > 0 AND currency = 'EUR'", "severity": "warn"},
    {"row_count": {"min": 10, "max": 1000}},
    {"freshness": {"column": "placed_at", "max_age": "7d"}},
]


def test_every_kind_matches_pandas(any_workspace: Workspace) -> None:
    frame = orders()
    version = cauce.data.register("orders", frame)
    cauce.data.register("people", people())
    result = cauce.data.validate(
        version.ref, suite(*ALL_CHECKS), as_of=AS_OF, raise_on_failure=False
    )
    checks = by_name(result)
    assert list(checks) == [
        "not_null(currency)",
        "unique(order_id)",
        "accepted_values(currency)",
        "range(amount)",
        "regex(customer)",
        "relationships(customer -> people.customer)",
        "positive EUR",
        "row_count",
        "freshness(placed_at)",
    ]
    for name, failing in pandas_failing(frame, {"people": people()}).items():
        check = checks[name]
        assert check.failing == int(failing.sum()), name
        assert check.rows == len(frame)
        assert check.passed is (not failing.any()), name
        assert check.success_rate == pytest.approx(1 - failing.mean())
        assert [r["_row"] for r in check.sample] == list(np.flatnonzero(failing))[:SAMPLE_ROWS]
    assert checks["row_count"].passed and checks["row_count"].observed == len(frame)
    newest = frame["placed_at"].max()
    assert checks["freshness(placed_at)"].observed["newest"].startswith(newest.isoformat())
    assert checks["freshness(placed_at)"].passed
    assert not result.passed
    assert [c.name for c in result.warnings] == ["positive EUR"]


def test_every_kind_passes_on_clean_data(any_workspace: Workspace) -> None:
    frame = orders()
    clean = frame[
        frame["currency"].isin(["EUR", "USD", "GBP"])
        & frame["customer"].isin(people(7)["customer"])
        & frame["amount"].between(0, 99.99)
        & ~frame["order_id"].duplicated(keep=False)
    ].assign(amount=lambda d: d["amount"] + 0.01, currency="EUR")
    version = cauce.data.register("orders", clean)
    cauce.data.register("people", people(7))
    result = cauce.data.validate(version.ref, suite(*ALL_CHECKS), as_of=AS_OF)
    assert result.passed
    assert all(c.passed and c.sample == [] for c in result.checks)
    assert all(c.failing == 0 for c in result.checks if c.failing is not None)


@given(
    values=st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=0, max_size=30),
    low=st.integers(-5, 5),
    span=st.integers(0, 6),
)
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_not_null_range_unique_property(
    workspace: Workspace, values: list[int | None], low: int, span: int
) -> None:
    frame = pd.DataFrame({"x": pd.array(values, dtype="Int64")})
    name = f"p{next(_counter)}"
    version = cauce.data.register(name, frame)
    checks = [
        {"not_null": {"column": "x"}},
        {"range": {"column": "x", "min": low, "max": low + span}},
        {"unique": {"column": "x"}},
    ]
    result = cauce.data.validate(version.ref, suite(*checks), raise_on_failure=False)
    x = frame["x"]
    expected = {
        "not_null(x)": int(x.isna().sum()),
        "range(x)": int((x.notna() & ~x.between(low, low + span)).sum()),
        "unique(x)": int((x.notna() & x.duplicated(keep=False)).sum()),
    }
    assert {c.name: c.failing for c in result.checks} == expected
    assert result.passed is (sum(expected.values()) == 0)


_counter = itertools.count()


# -- mostly, severity, samples ----------------------------------------------------------------


def test_mostly_at_the_boundary(any_workspace: Workspace) -> None:
    # 100 rows; column xN holds N nulls.
    frame = pd.DataFrame({f"x{n}": [None] * n + [1.0] * (100 - n) for n in (0, 1, 2)})
    version = cauce.data.register("m", frame)
    cases = [("x0", 1.0, True), ("x1", 0.99, True), ("x2", 0.99, False), ("x2", 0.98, True)]
    rules = suite(*({"not_null": {"column": c}, "mostly": m} for c, m, _ in cases))
    result = cauce.data.validate(version.ref, rules, raise_on_failure=False)
    for check, (column, _, passed) in zip(result.checks, cases, strict=True):
        nulls = int(frame[column].isna().sum())
        assert (check.failing, check.passed) == (nulls, passed), check.name
        assert check.success_rate == pytest.approx((100 - nulls) / 100)
    assert [c.name for c in result.failures] == ["not_null(x2)"]


def test_warn_reports_and_error_blocks(any_workspace: Workspace) -> None:
    version = cauce.data.register("w", pd.DataFrame({"x": [1, 2, 2]}))
    warn = suite({"unique": {"column": "x"}, "severity": "warn"})
    result = cauce.data.validate(version.ref, warn)  # does not raise
    assert result.passed and [c.name for c in result.warnings] == ["unique(x)"]
    assert result.failures == []
    with pytest.raises(QualityGateFailed) as caught:
        cauce.data.validate(version.ref, suite({"unique": {"column": "x"}}))
    assert caught.value.code == "quality-gate-failed"


def test_sample_is_bounded_and_holds_the_first_failing_rows(any_workspace: Workspace) -> None:
    frame = pd.DataFrame({"n": np.arange(100), "label": [f"r{i}" for i in range(100)]})
    version = cauce.data.register("sampled", frame)
    result = cauce.data.validate(version.ref, suite({"sql": "n % 4 <> 1"}), raise_on_failure=False)
    check = result.checks[0]
    assert check.failing == 25
    assert len(check.sample) == SAMPLE_ROWS
    failing = frame[frame["n"] % 4 == 1].head(SAMPLE_ROWS)
    assert check.sample == [
        {"_row": int(i), "n": int(row.n), "label": row.label} for i, row in failing.iterrows()
    ]


# -- storage and the gate ----------------------------------------------------------------------


def test_results_are_stored_with_an_audit_event(any_workspace: Workspace) -> None:
    version = cauce.data.register("stored", pd.DataFrame({"x": [1.0, None, 3.0]}))
    rules = suite({"not_null": {"column": "x"}}, {"row_count": {"min": 1}}, name="bar")
    result = cauce.data.validate(version.ref, rules, raise_on_failure=False)
    assert result.id is not None and result.dataset == "stored@1" and not result.passed
    with server_side(any_workspace).store.read() as conn:
        row = conn.execute(select(check_results)).one()
    assert row.dataset_version_id == version.id
    assert (row.suite, row.suite_sha256, row.passed, row.user) == (
        "bar",
        rules.sha256(),
        False,
        "tester",
    )
    assert row.results[0]["failing"] == 1 and row.results[0]["sample"][0]["_row"] == 1
    assert cauce.data.validations(version.ref) == [result]
    (event,) = audit.events(server_side(any_workspace), action="check_result.create")
    assert event.entity_id == result.id
    assert event.after == {
        "dataset_version": "stored@1",
        "suite": "bar",
        "passed": False,
        "failed": ["not_null(x)"],
        "warnings": [],
    }


def test_gate_failure_lists_the_failing_error_checks(any_workspace: Workspace) -> None:
    version = cauce.data.register("gate", pd.DataFrame({"x": [1, 1, 50], "y": ["a", "b", "c"]}))
    rules = suite(
        {"unique": {"column": "x"}},
        {"name": "small x", "range": {"column": "x", "max": 10}},
        {"accepted_values": {"column": "y", "values": ["a"]}, "severity": "warn"},
        {"not_null": {"column": "y"}},
    )
    with pytest.raises(QualityGateFailed) as caught:
        cauce.data.validate(version.ref, rules)
    message = str(caught.value)
    assert "gate@1" in message and "unique(x), small x" in message
    assert "accepted_values" not in message and "not_null" not in message
    result = caught.value.result  # type: ignore[attr-defined]
    assert [c.name for c in result.failures] == ["unique(x)", "small x"]
    assert caught.value.details["result"]["passed"] is False
    assert len(cauce.data.validations(version.ref)) == 1  # the failure is stored too


def test_missing_column_is_refused_before_anything_runs(any_workspace: Workspace) -> None:
    version = cauce.data.register("cols", pd.DataFrame({"age": [1, 2]}))
    with pytest.raises(InvalidInput, match=r"'agee'.*cols@1"):
        cauce.data.validate(version.ref, suite({"not_null": {"column": "agee"}}))
    cauce.data.register("other", pd.DataFrame({"id": [1]}))
    rel = {"relationships": {"column": "age", "to": "other@1", "field": "ident"}}
    with pytest.raises(InvalidInput, match=r"'ident'.*other@1"):
        cauce.data.validate(version.ref, suite(rel))
    rel["relationships"]["to"] = "ghost"
    with pytest.raises(InvalidInput, match="ghost"):
        cauce.data.validate(version.ref, suite(rel))
    assert row_count(server_side(any_workspace), "check_results") == 0


def test_a_check_that_does_not_fit_the_column_type_is_named(any_workspace: Workspace) -> None:
    version = cauce.data.register("typed", pd.DataFrame({"n": [1, 2], "s": ["a", "b"]}))
    fine = {"not_null": {"column": "n"}}
    for bad in [
        {"name": "numbers", "accepted_values": {"column": "s", "values": [1, 2]}},
        {"name": "numbers", "range": {"column": "s", "min": 0}},
    ]:
        with pytest.raises(InvalidInput, match=r"check 'numbers' cannot run on typed@1"):
            cauce.data.validate(version.ref, suite(fine, bad))


def test_relationships_across_datasets_and_versions(any_workspace: Workspace) -> None:
    cauce.data.register("people", people(2))  # C000, C001
    cauce.data.register("people", people(3))  # adds C002
    frame = pd.DataFrame({"customer": ["C000", "C002", None, "C002"]})
    version = cauce.data.register("orders", frame)
    newest = {"relationships": {"column": "customer", "to": "people", "field": "customer"}}
    assert cauce.data.validate(version.ref, suite(newest)).passed
    first = {"relationships": {"column": "customer", "to": "people@1", "field": "customer"}}
    result = cauce.data.validate(version.ref, suite(first), raise_on_failure=False)
    assert (result.checks[0].failing, [r["_row"] for r in result.checks[0].sample]) == (2, [1, 3])


def test_freshness_against_a_fixed_as_of(any_workspace: Workspace) -> None:
    frame = pd.DataFrame(
        {
            "t": pd.to_datetime(["2024-01-01", "2024-01-03", None]),
            "tz": pd.to_datetime(["2024-01-01", "2024-01-03", None]).tz_localize("UTC"),
            "d": [dt.date(2024, 1, 1), dt.date(2024, 1, 3), None],
            "ns": pd.to_datetime(["2024-01-01", "2024-01-03", None]).astype("datetime64[ns]"),
        }
    )
    version = cauce.data.register("fresh", frame)
    columns = ("t", "tz", "d", "ns")
    rules = suite(*({"freshness": {"column": c, "max_age": "7d"}} for c in columns))
    plus_one = dt.timezone(dt.timedelta(hours=1))
    for as_of, passed in [
        ("2024-01-08T00:00:00", True),
        ("2024-01-10T00:00:00", True),  # exactly max_age: passes
        ("2024-01-10T00:00:01", False),
        (dt.datetime(2024, 1, 10, 1, tzinfo=plus_one), True),  # the same instant as 00:00 UTC
        (dt.datetime(2024, 1, 10, 0, 30), False),  # naive: UTC
    ]:
        result = cauce.data.validate(version.ref, rules, as_of=as_of, raise_on_failure=False)
        assert [c.passed for c in result.checks] == [passed] * len(columns), as_of
        assert result.checks[0].observed["newest"] == "2024-01-03T00:00:00+00:00"


def test_freshness_refuses_other_columns_and_fails_on_no_values(
    any_workspace: Workspace,
) -> None:
    frame = pd.DataFrame({"n": [1, 2], "t": pd.to_datetime([None, None])})
    version = cauce.data.register("stale", frame)
    with pytest.raises(InvalidInput, match="not timestamps"):
        cauce.data.validate(version.ref, suite({"freshness": {"column": "n", "max_age": "1d"}}))
    result = cauce.data.validate(
        version.ref, suite({"freshness": {"column": "t", "max_age": "1d"}}), raise_on_failure=False
    )
    assert not result.passed and "no values" in result.checks[0].message


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("kind: CheckSuite\nname: [unclosed", ("not valid YAML",)),
        ("- just\n- a list", ("mapping",)),
        ("name: s\nchecks:\n  - not_a_check: {column: a}", ("checks.0.not_a_check",)),
        ("name: s\nchecks:\n  - range: {column: a}", ("checks.0.range", "min, max")),
        ("name: s\nchecks:\n  - range: {column: a, min: 5, max: 1}", ("greater than max",)),
        ("name: s\nchecks:\n  - not_null: {column: a}\n    mostly: 1.5", ("checks.0.mostly",)),
        ("name: s\nchecks:\n  - not_null: {column: a}\n    severity: fatal", ("severity",)),
        ("name: s\nchecks:\n  - not_null: {column: a}\n    unique: {column: a}", ("exactly one",)),
        ("name: s\nchecks:\n  - mostly: 0.5", ("exactly one", "none")),
        ("name: s\nchecks:\n  - row_count: {min: 1}\n    mostly: 0.5", ("mostly",)),
        ("name: s\nchecks:\n  - freshness: {column: t, max_age: soon}", ("max_age",)),
        ("name: s\nchecks:\n  - regex: {column: a, pattern: '('}", ("checks.0.regex.pattern",)),
        ("name: s\nchecks:\n  - not_null: {columns: a}", ("checks.0.not_null.column",)),
        ("name: s\nchecks: []", ("checks",)),
        ("kind: Monitor\nname: s\nchecks:\n  - not_null: {column: a}", ("kind",)),
        (
            "name: s\nchecks:\n  - {name: x, not_null: {column: a}}\n"
            "  - {name: x, unique: {column: a}}",
            ("unique", "x"),
        ),
    ],
)
def test_bad_suites_name_the_field(text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_suite(text)
    for word in words:
        assert word in str(caught.value)


def test_suite_from_a_file_a_dict_and_an_object(tmp_path: Path) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text("kind: CheckSuite\nname: s\nchecks:\n  - not_null: {column: a}\n")
    from_file = load_suite(path)
    assert load_suite(str(path)) == from_file
    assert load_suite(from_file.model_dump()) == from_file
    assert load_suite(from_file) is from_file
    assert from_file.sha256() == suite({"not_null": {"column": "a"}}).sha256()
    with pytest.raises(InvalidInput, match="does not exist"):
        load_suite(tmp_path / "missing.yaml")


def test_repeated_default_names_are_numbered() -> None:
    rules = suite({"range": {"column": "a", "min": 0}}, {"range": {"column": "a", "max": 9}})
    assert rules.check_names() == ["range(a)", "range(a) #2"]


@pytest.mark.parametrize(
    "expression",
    [
        "1=1; DROP TABLE x",
        "amount > 0;",
        "1=1 -- and the rest",
        "1=1 /* hidden */",
        "1=1) OR (1=1",
        "(1=1",
        "currency = 'EUR",
    ],
)
def test_sql_that_is_not_one_expression_is_refused(expression: str) -> None:
    with pytest.raises(InvalidInput, match=r"checks\.0\.sql"):
        load_suite({"name": "s", "checks": [{"sql": expression}]})


def test_sql_runs_sandboxed_and_must_be_boolean(any_workspace: Workspace) -> None:
    version = cauce.data.register("sq", pd.DataFrame({"a": [1, 2], "s": ["x;--", "y"]}))
    # Separators and comment markers inside a literal are plain characters.
    literal = cauce.data.validate(version.ref, suite({"sql": "s <> 'x;--' OR a = 1"}))
    assert literal.passed
    for expression, words in [
        ("(SELECT count(*) FROM read_csv('/etc/passwd')) > 0", "disabled"),
        ("a + 1", "true/false"),
        ("nope > 1", "nope"),
    ]:
        with pytest.raises(InvalidInput, match=words):
            cauce.data.validate(version.ref, suite({"name": "q", "sql": expression}))


# -- promotion ---------------------------------------------------------------------------------


def test_promote_registers_only_after_the_suite_passes(any_workspace: Workspace) -> None:
    raw = cauce.data.register("raw", pd.DataFrame({"x": [1, 2, 2, None]}), layer="bronze")
    rules = suite({"not_null": {"column": "x"}}, {"unique": {"column": "x"}})
    before = row_count(server_side(any_workspace), "dataset_versions")
    with pytest.raises(QualityGateFailed, match=r"not_null\(x\), unique\(x\)"):
        cauce.data.promote(raw.ref, rules, name="clean")
    with pytest.raises(QualityGateFailed, match=r"unique\(x\)"):
        cauce.data.promote(raw.ref, rules, name="clean", transform=lambda d: d.dropna())
    assert row_count(server_side(any_workspace), "dataset_versions") == before

    promoted = cauce.data.promote(
        raw.ref, rules, name="clean", transform=lambda d: d.dropna().drop_duplicates()
    )
    assert row_count(server_side(any_workspace), "dataset_versions") == before + 1
    assert (promoted.version.ref, promoted.version.layer) == ("clean@1", "silver")
    assert promoted.validation.passed and promoted.validation.dataset == "clean@1"
    assert cauce.data.load(promoted.version)["x"].tolist() == [1.0, 2.0]
    assert cauce.data.validations(promoted.version) == [promoted.validation]
    graph = walk(server_side(any_workspace), "dataset_version", raw.id, "downstream")
    assert promoted.version.id in {n.id for n in graph.nodes}


def test_promote_without_a_transform(any_workspace: Workspace) -> None:
    raw = cauce.data.register("raw", pd.DataFrame({"x": [1, 2]}), layer="bronze")
    rules = suite({"not_null": {"column": "x"}})
    with pytest.raises(Conflict, match="raw@1"):
        cauce.data.promote(raw.ref, rules)
    with pytest.raises(Conflict, match="raw@1"):  # the same content, found by register
        cauce.data.promote(raw.ref, rules, name="raw", transform=lambda d: d)
    assert cauce.data.validations(raw.ref) == []  # refused before anything ran
    promoted = cauce.data.promote(raw.ref, rules, to_layer="gold", name="gold_x")
    assert (promoted.version.ref, promoted.version.layer) == ("gold_x@1", "gold")
    with pytest.raises(InvalidInput, match="layer"):
        cauce.data.promote(raw.ref, rules, to_layer="platinum")


# -- the documented example --------------------------------------------------------------------


def test_the_example_suite_on_the_demo_data(any_workspace: Workspace) -> None:
    frame = pd.read_csv(DEMO_CSV, parse_dates=["signup_date"])
    raw = cauce.data.register("customers", frame, layer="bronze")
    example = EXAMPLES / "customers-checks.yaml"
    as_of = "2026-05-10"
    result = cauce.data.validate(raw.ref, example, as_of=as_of, raise_on_failure=False)
    assert [c.name for c in result.failures] == ["unique(customer_id)", "range(age)"]
    ids = frame["customer_id"]
    assert by_name(result)["unique(customer_id)"].failing == int(ids.duplicated(keep=False).sum())
    assert by_name(result)["range(age)"].failing == int((~frame["age"].between(18, 120)).sum())
    promoted = cauce.data.promote(
        raw.ref,
        example,
        name="customers_silver",
        transform=lambda df: df.drop_duplicates("customer_id").query("age >= 18"),
        as_of=as_of,
    )
    assert promoted.validation.passed and promoted.version.layer == "silver"


def test_every_suite_field_and_check_kind_is_documented() -> None:
    from cauce.data import suites

    text = (EXAMPLES.parent / "quality.md").read_text()
    models = [suites.CheckSuite, suites.Check]
    models += [
        suites.Check.model_fields[kind].annotation.__args__[0]  # type: ignore[union-attr]
        for kind in suites.KINDS
        if kind != "sql"
    ]
    fields = {name for model in models for name in model.model_fields}
    missing = sorted(f for f in fields if f"`{f}`" not in text)
    assert not missing, f"fields missing from docs/quality.md: {missing}"
