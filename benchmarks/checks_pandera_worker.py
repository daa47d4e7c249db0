"""The pandera side of the checks benchmark, run by ``checks_vs_pandera.py`` in pandera's venv.

It imports only the standard library at the top, so the benchmark can ship it to any
interpreter. It reads the benchmark's Parquet file with pandas (not timed), turns the suite
(a JSON list of checks, the same list the Cauce side runs as YAML) into one
``pandera.DataFrameSchema`` and times ``schema.validate(df, lazy=True)``, catching
``SchemaErrors``. The failing rows of each check are counted from the error's
``failure_cases`` (distinct row labels per check), so that ``mostly`` can be judged the same
way on both sides: pandera has no such threshold.

Example::

    .bench/pandera-venv/bin/python benchmarks/checks_pandera_worker.py \\
        --data .bench/checks/data-200000-seed7.parquet --suite suite.json --reps 3 --out r.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# pandera's names for its own column checks
NOT_NULL = "not_nullable"
UNIQUE = "field_uniqueness"


def build_schema(checks: list[dict[str, Any]]) -> tuple[Any, dict[tuple[str | None, str], str]]:
    """The suite as a DataFrameSchema; and, for each (column, pandera check name), our name.

    Columns are not typed (``dtype=None``) and not required to be non-null unless the suite
    says so, so pandera runs exactly the suite's checks and nothing else.
    """
    import pandera.pandas as pa

    columns: dict[str, dict[str, Any]] = {}
    frame_checks = []
    names: dict[tuple[str | None, str], str] = {}

    def column(name: str) -> dict[str, Any]:
        return columns.setdefault(name, {"nullable": True, "unique": False, "checks": []})

    def add(col: str | None, check: Any, name: str) -> None:
        # failure_cases names a check by its error text (built-in checks) or its name
        for label in {check.name, check.error, str(check)} - {None}:
            names[(col, str(label))] = name
        (column(col)["checks"] if col is not None else frame_checks).append(check)

    for c in checks:
        kind, name, col, spec = c["kind"], c["name"], c.get("column"), c["spec"]
        if kind == "not_null":
            column(col)["nullable"] = False
            names[(col, NOT_NULL)] = name
        elif kind == "unique":
            column(col)["unique"] = True
            names[(col, UNIQUE)] = name
        elif kind == "accepted_values":
            add(col, pa.Check.isin(spec["values"], name=name), name)
        elif kind == "range":
            add(col, _range(pa, spec, name), name)
        elif kind == "regex":
            pattern = spec["pattern"]
            # pandera's str_matches is re.match (anchored at the start only); the suite's regex
            # must match in full, as Cauce's regexp_full_match does.
            add(col, pa.Check(lambda s, p=pattern: s.str.fullmatch(p), name=name), name)
        elif kind == "sql":
            # A row fails when the expression is not true: null comparisons give False in pandas.
            expr = spec["pandas"]
            add(None, pa.Check(lambda df, e=expr: df.eval(e), name=name, ignore_na=False), name)
        elif kind == "row_count":
            low, high = spec.get("min"), spec.get("max")
            check = pa.Check(
                lambda df, lo=low, hi=high: (
                    (lo is None or len(df) >= lo) and (hi is None or len(df) <= hi)
                ),
                name=name,
            )
            add(None, check, name)
        else:
            raise SystemExit(f"the pandera worker cannot express check kind {kind!r}")
    schema = pa.DataFrameSchema(
        {col: pa.Column(None, **settings) for col, settings in columns.items()},
        checks=frame_checks,
        name="bench",
    )
    return schema, names


def _range(pa: Any, spec: dict[str, Any], name: str) -> Any:
    low, high = spec.get("min"), spec.get("max")
    low_in, high_in = spec.get("min_inclusive", True), spec.get("max_inclusive", True)
    if low is not None and high is not None:
        return pa.Check.in_range(low, high, include_min=low_in, include_max=high_in, name=name)
    if low is not None:
        return (pa.Check.ge if low_in else pa.Check.gt)(low, name=name)
    return (pa.Check.le if high_in else pa.Check.lt)(high, name=name)


def failing_counts(
    error: Any, names: dict[tuple[str | None, str], str]
) -> tuple[dict[str, int], list[str]]:
    """Failing rows per check (our names) from SchemaErrors; and the checks that failed."""
    cases = error.failure_cases

    def ours(col: Any, check: Any) -> str:
        key_col = None if col is None or col != col else str(col)  # col != col: NaN
        name = names.get((key_col, str(check))) or names.get((None, str(check)))
        if name is None:
            raise SystemExit(f"unexpected pandera failure: column {col!r}, check {check!r}")
        return name

    # A frame-wide check lists each failing row once per column: count distinct row labels.
    labels = [ours(col, check) for col, check in zip(cases["column"], cases["check"], strict=True)]
    per_check = cases.assign(ours=labels).groupby("ours", sort=False)["index"].nunique()
    counts = {str(name): int(n) for name, n in per_check.items()}
    failed = labels
    return counts, sorted(set(failed))


def main() -> int:
    """Read the data (untimed), validate it ``--reps`` times, write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--suite", type=Path, required=True, help="the checks as JSON")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--turns",
        action="store_true",
        help="print 'ready' once the data is read, then run each validation only when a line "
        "arrives on stdin and print 'done' after it (the caller alternates with its own runs)",
    )
    args = parser.parse_args()

    import pandas as pd
    import pandera
    import pandera.errors

    checks = json.loads(args.suite.read_text())
    started = time.perf_counter()
    df = pd.read_parquet(args.data)
    read_s = time.perf_counter() - started
    schema, names = build_schema(checks)
    if args.turns:
        print("ready", flush=True)

    samples, cpu_samples, runs = [], [], []
    for _ in range(args.reps):
        if args.turns and not sys.stdin.readline():
            raise SystemExit("the caller stopped before every turn was run")
        error = None
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            schema.validate(df, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            error = exc
        samples.append(time.perf_counter() - wall)
        cpu_samples.append(time.process_time() - cpu)
        # counting the failures per check is ours, not pandera's work: not timed
        counts, failed = failing_counts(error, names) if error is not None else ({}, [])
        del error
        runs.append({"failing": counts, "failed": failed})
        if args.turns:
            print("done", flush=True)
    if any(r != runs[0] for r in runs):
        raise SystemExit("pandera gave different results on the same data")
    result = {
        "pandera_version": pandera.__version__,
        "pandas_version": pd.__version__,
        "rows": len(df),
        "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
        "read_s": read_s,
        "samples_s": samples,
        "cpu_samples_s": cpu_samples,
        "median_s": statistics.median(samples),
        "failing": runs[0]["failing"],
        "failed": runs[0]["failed"],
    }
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
