"""Cauce's quality checks against pandera's and against a hand-written DuckDB query (the floor),
on the same Parquet file and the same suite.

The data (default 10,000,000 rows x 20 columns of ints, floats, strings, categories, a
timestamp and a bool) is generated in code from a seed, with violations injected at known,
disjoint rows, and written once as Parquet under ``.bench/checks/`` (gitignored). One suite of
20 checks (not_null, unique, accepted_values, range, regex, a custom predicate, row_count; some
with ``mostly``) runs on every side:

- Cauce: the file is registered as a dataset version (not timed), then
  ``cauce.data.validate(ref, suite, raise_on_failure=False)`` is timed, in this process, on a
  fresh workspace under ``.bench/``: reading the stored file while a thread verifies its sha256,
  the counts, a sample of failing rows per check, the result stored with its audit record.
- the floor: ``checks_floor.py``, DuckDB statements written by hand for this suite (no Cauce
  code), each check in its cheapest exact form, three variants of the ``unique`` check, on one
  ``duckdb.connect()`` with the same defaults as Cauce's, timed in this process: the failing
  counts and the row count, nothing else. Every variant runs in every turn; the floor is the
  variant with the fastest median.
- pandera: ``checks_pandera_worker.py`` runs in pandera's own venv (``.bench/pandera-venv``,
  created on first use with ``pip install pandera pandas pyarrow``), reads the file with pandas
  (not timed) and times ``schema.validate(df, lazy=True)``, catching ``SchemaErrors``.

pandera has no ``mostly`` and the floor only counts: every side's verdicts are derived from its
failing counts with the same rule, ``(rows - failing) / rows >= mostly``. The failing counts
must agree with each other and with the injected violations; any disagreement is printed and the
exit status is 1. The sides take turns. The figures are medians of several runs; the targets:
Cauce / floor at most 1.5x, pandera / Cauce at least 3x. An extra ratio, labelled as such, adds
pandera's own Parquet read, which Cauce's timing includes.

Example::

    python benchmarks/checks_vs_pandera.py --json .bench/checks.json   # full run, minutes
    python benchmarks/checks_vs_pandera.py --quick --no-pandera        # smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from checks_floor import Floor
from peers import ensure_venv, load_average, machine, note

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("checks_pandera_worker.py")
BENCH = REPO / ".bench"
DEFAULT_VENV = BENCH / "pandera-venv"
DATA_DIR = BENCH / "checks"
PANDERA_REQUIREMENTS = ("pandera", "pandas", "pyarrow")
FULL_ROWS = 10_000_000
QUICK_ROWS = 200_000
SEED = 7
FLOOR_TARGET = 1.5  # Cauce / the hand-written query, at most
PANDERA_TARGET = 3.0  # pandera / Cauce, at least

STATUSES = ["new", "paid", "shipped", "delivered", "returned"]
CHANNELS = ["web", "store", "app", "phone"]
COUNTRIES = ["AR", "BR", "CA", "CL", "CO", "DE", "ES", "FR", "GB", "IN"]
COUNTRIES += ["IT", "JP", "MX", "NL", "PE", "PT", "SE", "US", "UY", "ZA"]


@dataclass(frozen=True)
class Spec:
    """One check of the suite, in a form both sides are built from."""

    name: str
    kind: str
    column: str | None
    spec: dict[str, Any] = field(default_factory=dict)
    mostly: float = 1.0

    def cauce(self) -> dict[str, Any]:
        """The check as an entry of a Cauce suite."""
        entry: dict[str, Any] = {"name": self.name}
        if self.kind == "sql":
            entry["sql"] = self.spec["sql"]
        elif self.kind == "row_count":
            entry["row_count"] = dict(self.spec)
        else:
            entry[self.kind] = {"column": self.column, **self.spec}
        if self.mostly < 1:
            entry["mostly"] = self.mostly
        return entry


# Verdicts at the default size: 7 checks fail, 13 pass (4 of them only thanks to `mostly`).
SUITE = [
    Spec("order_id present", "not_null", "order_id"),
    Spec("order_id unique", "unique", "order_id"),
    Spec("order_id format", "regex", "order_id", {"pattern": "ORD-[0-9]{10}"}, mostly=0.9999),
    Spec("customer_id present", "not_null", "customer_id"),
    Spec("customer_id range", "range", "customer_id", {"min": 1, "max": 1_000_000}),
    Spec("quantity range", "range", "quantity", {"min": 1, "max": 100}),
    Spec("price mostly present", "not_null", "price", mostly=0.99),
    Spec("price positive", "range", "price", {"min": 0, "min_inclusive": False}),
    Spec("tax_rate range", "range", "tax_rate", {"min": 0, "max": 0.25}),
    Spec("score range", "range", "score", {"min": -10, "max": 10}, mostly=0.999),
    Spec("status known", "accepted_values", "status", {"values": STATUSES}),
    Spec("channel known", "accepted_values", "channel", {"values": CHANNELS}),
    Spec("country known", "accepted_values", "country", {"values": COUNTRIES}),
    Spec("email format", "regex", "email", {"pattern": "[a-z0-9]+@[a-z]+\\.com"}),
    Spec("sku format", "regex", "sku", {"pattern": "SKU-[0-9]{5}"}),
    Spec(
        "discount within price",
        "sql",
        None,
        {"sql": "discount <= price", "pandas": "discount <= price"},
    ),
    Spec("latency bound", "range", "latency_ms", {"max": 60_000}, mostly=0.999),
    Spec("created_at present", "not_null", "created_at"),
    Spec("rating known", "accepted_values", "rating", {"values": [1, 2, 3, 4, 5]}),
    Spec("row count", "row_count", None, {"min": 1000}),
]


def suite_yaml_dict() -> dict[str, Any]:
    """The suite as Cauce reads it."""
    return {
        "kind": "CheckSuite",
        "name": "bench-orders",
        "description": "checks_vs_pandera benchmark suite",
        "checks": [s.cauce() for s in SUITE],
    }


# -- the data -------------------------------------------------------------------------------


def injected_counts(rows: int) -> dict[str, int]:
    """How many rows each kind of violation is injected into (disjoint rows)."""
    return {
        "dup_pairs": max(1, rows // 10_000),
        "bad_order_id": max(1, rows // 20_000),
        "bad_quantity": max(1, rows // 1_000),
        "null_price": max(1, rows // 200),
        "discount_over_price": max(1, rows // 2_000),
        "score_outlier": max(1, rows // 5_000),
        "unknown_status": max(1, rows // 10_000),
        "null_country": max(1, rows // 2_000),
        "bad_email": max(1, rows // 5_000),
        "slow_latency": max(1, rows // 5_000),
    }


def expected_failing(rows: int) -> dict[str, int]:
    """The failing rows of each row check, known from what was injected."""
    n = injected_counts(rows)
    expected = {s.name: 0 for s in SUITE if s.kind != "row_count"}
    expected.update(
        {
            "order_id unique": 2 * n["dup_pairs"],  # both copies of each pair fail
            "order_id format": n["bad_order_id"],
            "quantity range": n["bad_quantity"],
            "price mostly present": n["null_price"],
            "score range": n["score_outlier"],
            "status known": n["unknown_status"],
            "email format": n["bad_email"],
            # a null price makes the predicate null, which fails as well
            "discount within price": n["discount_over_price"] + n["null_price"],
            "latency bound": n["slow_latency"],
        }
    )
    return expected


def generate(path: Path, rows: int, seed: int) -> None:
    """Write the benchmark's table to ``path`` (Parquet), violations injected at known rows."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n = injected_counts(rows)
    # Disjoint rows for every injected violation: consecutive slices of one permutation.
    order = rng.permutation(rows)
    picks: dict[str, Any] = {}
    at = 0
    for key, count in [("dup_a", n["dup_pairs"]), ("dup_b", n["dup_pairs"]), *n.items()]:
        if key == "dup_pairs":
            continue
        picks[key] = order[at : at + count]
        at += count
    if at > rows:
        raise SystemExit(f"--rows {rows} is too small for the injected violations")

    def text(prefix: str, numbers: Any, width: int) -> Any:
        digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
        return pc.binary_join_element_wise(prefix, digits, "")

    index = np.arange(rows, dtype=np.int64)
    order_id = index.copy()
    order_id[picks["dup_a"]] = order_id[picks["dup_b"]]
    bad_id = np.zeros(rows, dtype=bool)
    bad_id[picks["bad_order_id"]] = True
    order_ids = pc.if_else(pa.array(bad_id), text("ord-", order_id, 10), text("ORD-", order_id, 10))

    customer = rng.integers(1, 1_000_001, rows, dtype=np.int64)
    quantity = rng.integers(1, 101, rows, dtype=np.int32)
    bad_q = picks["bad_quantity"]
    quantity[bad_q] = np.where(np.arange(len(bad_q)) % 2 == 0, 0, 500)
    price = np.round(rng.uniform(0.5, 500.0, rows), 2)
    discount = np.round(price * rng.uniform(0.0, 0.5, rows), 2)
    discount[picks["discount_over_price"]] = price[picks["discount_over_price"]] + 1.0
    price_mask = np.zeros(rows, dtype=bool)
    price_mask[picks["null_price"]] = True
    tax_rate = np.round(rng.uniform(0.0, 0.24, rows), 2).astype(np.float32)
    score = np.clip(rng.standard_normal(rows), -9.0, 9.0)
    score[picks["score_outlier"]] = np.where(np.arange(n["score_outlier"]) % 2 == 0, 50.0, -50.0)

    status_idx = rng.integers(0, len(STATUSES), rows, dtype=np.int8)
    status_idx[picks["unknown_status"]] = len(STATUSES)  # "lost"
    status = pa.DictionaryArray.from_arrays(pa.array(status_idx), pa.array([*STATUSES, "lost"]))
    channel = pa.DictionaryArray.from_arrays(
        pa.array(rng.integers(0, len(CHANNELS), rows, dtype=np.int8)), pa.array(CHANNELS)
    )
    country_mask = np.zeros(rows, dtype=bool)
    country_mask[picks["null_country"]] = True
    country_idx = pa.array(rng.integers(0, len(COUNTRIES), rows, dtype=np.int32), mask=country_mask)
    country = pc.take(pa.array(COUNTRIES), country_idx)

    email = pc.binary_join_element_wise(
        "user", pc.cast(pa.array(customer), pa.string()), "@example.com", ""
    )
    bad_email = np.zeros(rows, dtype=bool)
    bad_email[picks["bad_email"]] = True
    email = pc.if_else(pa.array(bad_email), pc.replace_substring(email, "@", " at "), email)

    sku = text("SKU-", rng.integers(0, 100_000, rows, dtype=np.int64), 5)
    start = np.datetime64("2026-01-01T00:00:00", "us").astype(np.int64)
    span = 300 * 86_400 * 1_000_000
    created = pa.array(start + rng.integers(0, span, rows, dtype=np.int64), pa.timestamp("us"))
    latency = rng.integers(1, 5_000, rows, dtype=np.int64)
    latency[picks["slow_latency"]] = 120_000
    session = text("S", rng.integers(0, 10**12, rows, dtype=np.int64), 12)
    note_mask = rng.random(rows) > 0.05
    note = pc.take(
        pa.array(["gift wrap", "leave at door", "call first"]),
        pa.array(rng.integers(0, 3, rows, dtype=np.int32), mask=note_mask),
    )

    table = pa.table(
        {
            "order_id": order_ids,
            "customer_id": customer,
            "store_id": rng.integers(1, 501, rows, dtype=np.int32),
            "quantity": quantity,
            "price": pa.array(price, mask=price_mask),
            "discount": discount,
            "tax_rate": tax_rate,
            "score": score,
            "status": status,
            "channel": channel,
            "country": country,
            "email": email,
            "sku": sku,
            "created_at": created,
            "is_gift": rng.random(rows) < 0.1,
            "rating": rng.integers(1, 6, rows, dtype=np.int8),
            "weight_kg": rng.uniform(0.1, 30.0, rows).astype(np.float32),
            "latency_ms": latency,
            "session_id": session,
            "note": note,
        }
    )
    assert table.num_columns == 20
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def ensure_data(rows: int, seed: int) -> Path:
    """The Parquet file for ``rows`` and ``seed``, generated when missing."""
    path = DATA_DIR / f"data-{rows}-seed{seed}.parquet"
    if not path.exists():
        note(f"generating {rows:,} rows x 20 columns into {path}")
        started = time.perf_counter()
        generate(path, rows, seed)
        note(f"generated in {time.perf_counter() - started:.1f} s")
    return path


# -- the three sides --------------------------------------------------------------------------


def run_cauce(
    data: Path, reps: int, warmup: int, between: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Register the file in a fresh workspace (untimed), then time validate ``reps`` times,
    calling ``between()`` after each timed run (the other side's turn)."""
    for key in [k for k in os.environ if k.startswith("CAUCE_")]:
        del os.environ[key]
    BENCH.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="checks-cauce-", dir=BENCH) as tmp:
        os.environ["CAUCE_HOME"] = tmp
        import cauce

        started = time.perf_counter()
        version = cauce.data.register("bench_orders", data)
        register_s = time.perf_counter() - started
        from cauce.workspace import current

        # register stores its own Parquet copy of the table: it must hold the same pages
        stored = Path(current().artifacts.path_of(version.sha256))
        same_pages = column_chunks(stored) == column_chunks(data)
        suite = suite_yaml_dict()
        samples, cpu_samples, results = [], [], []
        for i in range(warmup + reps):
            wall, cpu = time.perf_counter(), time.process_time()
            result = cauce.data.validate(version.ref, suite, raise_on_failure=False)
            elapsed, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
            if i >= warmup:
                samples.append(elapsed)
                cpu_samples.append(cpu_s)
                results.append(result)
                if between is not None:
                    between()
        verdicts = [{c.name: (c.failing, c.passed) for c in r.checks} for r in results]
        if any(v != verdicts[0] for v in verdicts):
            raise SystemExit("Cauce gave different results on the same data")
        last = results[-1]
        stored_bytes = stored.stat().st_size
        from cauce.workspace import reset

        reset()
    return {
        "version": cauce.__version__,
        "duckdb": _duckdb_version(),
        "rows": version.row_count,
        "register_s": register_s,
        "stored_file": {"bytes": stored_bytes, "same_column_chunks": same_pages},
        "samples_s": samples,
        "cpu_samples_s": cpu_samples,
        "median_s": statistics.median(samples),
        "checks": {
            c.name: {"failing": c.failing, "passed": c.passed, "success_rate": c.success_rate}
            for c in last.checks
        },
    }


def column_chunks(path: Path) -> list[list[tuple[Any, ...]]]:
    """Per row group, each column chunk's rows, type, codec, encodings and compressed size."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    return [
        [
            (
                c.path_in_schema,
                c.num_values,
                c.physical_type,
                c.compression,
                c.encodings,
                c.total_compressed_size,
            )
            for c in (group.column(i) for i in range(meta.num_columns))
        ]
        for group in groups
    ]


def ensure_pandera_venv(venv: Path) -> Path:
    """Create ``venv`` with pandera, pandas and pyarrow unless it imports them; its python."""
    return ensure_venv(venv, PANDERA_REQUIREMENTS, "import pandera.pandas, pandas, pyarrow")


class PanderaWorker:
    """The pandera worker in its own process and venv, validating once per :meth:`turn`.

    It reads the data (untimed) when started; the two sides then take turns, so that both see
    the same load from whatever else runs on the machine.
    """

    def __init__(self, python: Path, data: Path, reps: int) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="checks-pandera-", dir=BENCH)
        tmp = Path(self.folder.name)
        suite = tmp / "suite.json"
        suite.write_text(json.dumps([asdict(s) for s in SUITE]))
        self.out = tmp / "result.json"
        self.left = reps
        cmd = [str(python), str(WORKER), "--data", str(data), "--suite", str(suite)]
        cmd += ["--reps", str(reps), "--out", str(self.out), "--turns"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp
        )
        self._expect("ready")

    def turn(self) -> None:
        """Run one of the worker's validations (nothing once its ``reps`` are done)."""
        if self.left > 0:
            self.left -= 1
            assert self.proc.stdin is not None
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self._expect("done")

    def result(self) -> dict[str, Any]:
        """The worker's figures, after the turns not taken yet."""
        while self.left > 0:
            self.turn()
        code = self.proc.wait()
        try:
            if code != 0:
                raise SystemExit(f"the pandera side failed (exit {code})")
            result: dict[str, Any] = json.loads(self.out.read_text())
        finally:
            self.folder.cleanup()
        return result

    def _expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # anything pandas or pandera print is skipped
            if line.strip() == word:
                return
        self.proc.kill()
        raise SystemExit(f"the pandera side failed before saying {word!r} (its stderr is above)")


# -- comparing and reporting -------------------------------------------------------------------


def verdict(failing: int, rows: int, mostly: float) -> bool:
    """Cauce's rule for a row check: ``(rows - failing) / rows >= mostly``."""
    rate = 1.0 - failing / rows if rows else 1.0
    return rate >= mostly - 1e-9


def row_count_verdict(spec: dict[str, Any], rows: int) -> bool:
    """Cauce's rule for ``row_count``: within ``min`` and ``max`` where given."""
    low, high = spec.get("min"), spec.get("max")
    return (low is None or rows >= low) and (high is None or rows <= high)


def compare(
    rows: int,
    cauce_side: dict[str, Any],
    floor_side: dict[str, Any] | None,
    pandera_side: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per check with every side's failing count and verdict; the disagreements."""
    expected = expected_failing(rows)
    table, problems = [], []
    if not cauce_side["stored_file"]["same_column_chunks"]:
        problems.append("Cauce's stored copy of the data has other column chunks than the file")
    for side, other in (("floor", floor_side), ("pandera", pandera_side)):
        if other is not None and other["rows"] != cauce_side["rows"]:
            problems.append(f"{side} counts {other['rows']} rows, Cauce {cauce_side['rows']}")
    for s in SUITE:
        mine = cauce_side["checks"][s.name]
        row: dict[str, Any] = {
            "check": s.name,
            "kind": s.kind,
            "mostly": s.mostly,
            "expected": expected.get(s.name),
            "cauce_failing": mine["failing"],
            "cauce_passed": mine["passed"],
            "floor_failing": None,
            "floor_passed": None,
            "pandera_failing": None,
            "pandera_passed": None,
        }
        if s.kind != "row_count" and mine["failing"] != expected[s.name]:
            problems.append(
                f"{s.name}: Cauce counts {mine['failing']}, {expected[s.name]} were injected"
            )
        if s.kind != "row_count" and mine["passed"] != verdict(mine["failing"], rows, s.mostly):
            problems.append(f"{s.name}: Cauce's verdict does not follow from its count")
        theirs: dict[str, tuple[int | None, bool]] = {}
        if floor_side is not None:
            if s.kind == "row_count":
                theirs["floor"] = (None, row_count_verdict(s.spec, floor_side["rows"]))
            else:
                failing = floor_side["failing"].get(s.name)
                if failing is None:
                    problems.append(f"{s.name}: the hand-written query has no such column")
                    failing = -1
                theirs["floor"] = (failing, verdict(failing, floor_side["rows"], s.mostly))
        if pandera_side is not None:
            if s.kind == "row_count":
                theirs["pandera"] = (None, s.name not in pandera_side["failed"])
            else:
                failing = pandera_side["failing"].get(s.name, 0)
                theirs["pandera"] = (failing, verdict(failing, pandera_side["rows"], s.mostly))
        for side, (failing, passed) in theirs.items():
            row[f"{side}_failing"] = failing
            row[f"{side}_passed"] = passed
            if failing != mine["failing"] or passed != mine["passed"]:
                problems.append(
                    f"{s.name}: Cauce {mine['failing']} failing ({_pf(mine['passed'])}), "
                    f"{side} {failing} failing ({_pf(passed)})"
                )
        table.append(row)
    return table, problems


def ratios(
    cauce_side: dict[str, Any],
    floor_side: dict[str, Any] | None,
    pandera_side: dict[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    """The two targets' ratios of medians (those that were measured), with their verdicts."""
    found: dict[str, dict[str, Any]] = {}
    if floor_side is not None:
        value = cauce_side["median_s"] / floor_side["median_s"]
        turns = zip(cauce_side["samples_s"], floor_side["samples_s"], strict=False)
        found["Cauce/floor"] = {
            "value": value,
            "target": f"<= {FLOOR_TARGET:g}x",
            "met": value <= FLOOR_TARGET,
            # a Cauce run and the floor's runs in the same turn saw about the same load
            "per_turn": [c / f for c, f in turns],
        }
    if pandera_side is not None:
        value = pandera_side["median_s"] / cauce_side["median_s"]
        turns = zip(pandera_side["samples_s"], cauce_side["samples_s"], strict=False)
        found["pandera/Cauce"] = {
            "value": value,
            "target": f">= {PANDERA_TARGET:g}x",
            "met": value >= PANDERA_TARGET,
            "per_turn": [p / c for p, c in turns],
        }
    return found


def format_checks(rows: list[dict[str, Any]]) -> str:
    """The per-check table."""
    header = ["check", "mostly", "injected", "Cauce fails", "floor fails", "pandera fails"]
    header += ["Cauce", "floor", "pandera"]
    lines = [header]
    for r in rows:
        lines.append(
            [
                r["check"],
                "-" if r["mostly"] >= 1 else f"{r['mostly']:g}",
                _count(r["expected"]),
                _count(r["cauce_failing"]),
                _count(r["floor_failing"]),
                _count(r["pandera_failing"]),
                _pf(r["cauce_passed"]),
                _pf(r["floor_passed"]),
                _pf(r["pandera_passed"]),
            ]
        )
    return _table(lines)


def format_timing(result: dict[str, Any]) -> str:
    """The timing tables: each side's median, CPU time and samples; the ratios and targets."""
    sides = [
        ("Cauce validate (counts, samples, sha256, stores the result)", result["cauce"]),
        (_floor_label(result["floor"]), result["floor"]),
        ("pandera validate (frame already in memory)", result["pandera"]),
    ]
    lines = [["side", "median", "CPU (median)", "samples (s)"]]
    for label, side in sides:
        if side is None:
            lines.append([label, "skipped", "-", "-"])
            continue
        lines.append(
            [
                label,
                _fmt_s(side["median_s"]),
                _fmt_s(statistics.median(side["cpu_samples_s"])),
                " ".join(f"{s:.3f}" for s in side["samples_s"]),
            ]
        )
    text = f"validate {result['rows']:,} rows x 20 cols, {len(SUITE)} checks\n" + _table(lines)
    lines = [["ratio of medians", "value", "target", "result", "per turn"]]
    for name in ("Cauce/floor", "pandera/Cauce"):
        ratio = result["ratios"].get(name)
        if ratio is None:
            lines.append([name, "-", "-", "n/a", "-"])
            continue
        lines.append(
            [
                name,
                f"{ratio['value']:.2f}x",
                ratio["target"],
                "PASS" if ratio["met"] else "FAIL",
                " ".join(f"{r:.2f}" for r in ratio["per_turn"]),
            ]
        )
    text += "\n\n" + _table(lines)
    if result["floor"] is not None:
        lines = [["floor variants, same turns", "median", "CPU (median)", "samples (s)"]]
        for name, variant in result["floor"]["variants"].items():
            best = " (the floor)" if name == result["floor"]["variant"] else ""
            lines.append(
                [
                    name + best,
                    _fmt_s(variant["median_s"]),
                    _fmt_s(variant["cpu_median_s"]),
                    " ".join(f"{s:.3f}" for s in variant["samples_s"]),
                ]
            )
        text += "\n\n" + _table(lines)
    if result["ratio_with_read"] is not None:
        text += (
            f"\nextra, not a target: pandera's read_parquet ({_fmt_s(result['pandera']['read_s'])})"
            f" + validate vs Cauce's validate, which reads the file itself: "
            f"{result['ratio_with_read']:.1f}x"
        )
    return text


def _floor_label(floor: dict[str, Any] | None) -> str:
    """The floor's row: the variant that was fastest, when it ran."""
    if floor is None:
        return "floor: hand-written DuckDB query (counts only)"
    return f"floor: hand-written DuckDB query, {floor['variant']} (counts only)"


def _table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = [
        " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(text)


def _pf(passed: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "-"}[passed]


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _duckdb_version() -> str:
    import duckdb

    return duckdb.__version__


# -- entry point ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Cauce vs a hand-written DuckDB query vs pandera: the same check suite on "
        "the same Parquet file.",
        epilog="Example: python benchmarks/checks_vs_pandera.py --json .bench/checks.json",
    )
    parser.add_argument("--rows", type=int, help=f"rows to generate (default {FULL_ROWS:,})")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ROWS:,} rows and fewer runs (smoke test)"
    )
    parser.add_argument(
        "--cauce-only", action="store_true", help="skip pandera and the hand-written query"
    )
    parser.add_argument(
        "--no-pandera", action="store_true", help="skip pandera (Cauce and the floor still run)"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--reps", type=int, help="timed runs per side (default 5 Cauce and floor, 3 pandera)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    parser.add_argument(
        "--pandera-python",
        type=Path,
        help="use this interpreter (with pandera) instead of the venv",
    )
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help=f"pandera venv (default {DEFAULT_VENV})"
    )
    parser.add_argument("--strict", action="store_true", help="also exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run the sides in turns, compare the verdicts, print; the exit status."""
    args = parse_args(argv)
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    cauce_reps = args.reps or (2 if args.quick else 5)
    pandera_reps = args.reps or (1 if args.quick else 3)
    data = ensure_data(rows, args.seed)
    pandera_python = None
    if not (args.cauce_only or args.no_pandera):
        pandera_python = args.pandera_python or ensure_pandera_venv(args.venv)

    load_before = load_average()
    if load_before is not None and load_before > 0.5 * (os.cpu_count() or 1):
        note(f"load average is {load_before:.2f}: other processes will add noise to the figures")
    pandera = None
    if pandera_python is not None:
        note(f"pandera: reading {data.name} (not timed)")
        pandera = PanderaWorker(pandera_python, data, pandera_reps)
    floor = None
    if not args.cauce_only:
        note("floor: one untimed run of each hand-written query")
        floor = Floor(data, cauce_reps)
    others = [n for n, side in (("floor", floor), ("pandera", pandera)) if side is not None]
    note(
        f"Cauce: registering {data.name} (not timed), one warm-up, then {cauce_reps} timed "
        f"validate runs" + (f", taking turns with {' and '.join(others)}" if others else "")
    )

    def between() -> None:
        if floor is not None:
            floor.turn()
        if pandera is not None:
            pandera.turn()

    cauce_side = run_cauce(data, cauce_reps, warmup=1, between=between)
    floor_side = floor.result() if floor else None
    pandera_side = pandera.result() if pandera else None

    check_rows, problems = compare(rows, cauce_side, floor_side, pandera_side)
    found = ratios(cauce_side, floor_side, pandera_side)
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "quick": args.quick,
        "rows": rows,
        "columns": 20,
        "seed": args.seed,
        "data": str(data),
        "data_bytes": data.stat().st_size,
        "machine": machine(),
        "load_average_1min": {"before": load_before, "after": load_average()},
        "suite": suite_yaml_dict(),
        "cauce": cauce_side,
        "floor": floor_side,
        "pandera": pandera_side,
        "checks": check_rows,
        "disagreements": problems,
        "ratios": found,
        "targets_met": all(r["met"] for r in found.values()) if found else None,
        # An extra figure, not a target: Cauce's timing includes reading the Parquet file,
        # pandera's does not; this one adds pandera's read_parquet (measured once).
        "ratio_with_read": (
            (pandera_side["read_s"] + pandera_side["median_s"]) / cauce_side["median_s"]
            if pandera_side
            else None
        ),
    }

    peers = [
        f"hand-written DuckDB queries (the fastest of {len(floor_side['variants'])}: "
        f"{floor_side['variant']}; DuckDB {floor_side['duckdb']}, {floor_side['threads']} threads)"
        if floor_side
        else "no floor",
        f"pandera {pandera_side['pandera_version']} (pandas {pandera_side['pandas_version']})"
        if pandera_side
        else "pandera skipped",
    ]
    print(
        f"Cauce {cauce_side['version']} (DuckDB {cauce_side['duckdb']}) vs {' vs '.join(peers)}; "
        f"{rows:,} rows x 20 columns ({data.stat().st_size / 1e6:.0f} MB Parquet), "
        f"{len(SUITE)} checks; {result['machine']['cpu_count']} CPUs, "
        f"Python {result['machine']['python']}; 1-minute load {_load(load_before)} before, "
        f"{_load(result['load_average_1min']['after'])} after"
    )
    if args.quick:
        print("(--quick: too little data for the timing verdicts to mean anything)")
    print(format_checks(check_rows))
    print()
    print(format_timing(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"results written to {args.json}")
    if problems:
        print("DISAGREEMENT:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    return 1 if args.strict and result["targets_met"] is False else 0


def _load(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    sys.exit(main())
