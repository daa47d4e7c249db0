"""Cauce's data drift against Evidently's ``DataDriftPreset``, on the same two Parquet files.

The data (default 1,000,000 reference and 1,000,000 current rows x 50 numerical and 10
categorical columns) is generated in code from a seed and written once as Parquet under
``.bench/drift/`` (gitignored). The numerical columns have varied shapes (normal, lognormal,
uniform, exponential, integer counts; some with nulls), the categorical ones 3 to 50 string
categories with skewed frequencies (some with nulls). The current rows are drawn from the same
distributions as the reference rows except in a known set of columns: 10 numerical columns
shifted or scaled and 3 categorical columns with a changed mix (one with a new category).

Both sides read the files into pandas DataFrames first (not timed), then:

- Cauce, in this process: "full" times ``build_profile(reference)`` followed by
  ``data_drift(profile, current, numerical="normalized_wasserstein",
  categorical="jensen_shannon", threshold=0.1, drift_share=0.3)``; "stored reference" times
  only ``data_drift`` with the profile already built (what a monitor run does).
- Evidently: ``drift_evidently_worker.py`` runs in Evidently's own venv
  (``.bench/evidently-venv``, created on first use with ``pip install "evidently>=0.7,<0.8"
  "pandas<3" pyarrow``) and times ``Dataset.from_pandas`` of both frames with the column types
  declared plus ``Report([DataDriftPreset(drift_share=0.3)]).run(current, reference)``. With
  more than 1,000 reference rows its default tests are the normalized Wasserstein distance for
  numerical columns and the Jensen-Shannon distance for categorical ones, threshold 0.1: the
  same metrics Cauce is asked for.

The sides take turns (the Evidently worker reads its data first; then Cauce, Evidently, Cauce,
...); a figure is the median of its runs, the ratio is Evidently's median over Cauce's "full"
median. The targets: the full computation at most 15 s, at least 30x faster than Evidently.
Both sides' per-column verdicts are compared with each other and with the columns drift was
injected into; a disagreement is printed (the exit status stays 0 unless ``--strict``).

Example::

    python benchmarks/drift_vs_evidently.py --json .bench/drift.json        # full run, minutes
    python benchmarks/drift_vs_evidently.py --quick --cauce-only            # smoke test, seconds
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("drift_evidently_worker.py")
BENCH = REPO / ".bench"
DEFAULT_VENV = BENCH / "evidently-venv"
DATA_DIR = BENCH / "drift"
# Evidently 0.7 does not work with pandas 3 (its legacy metrics use removed pandas API).
EVIDENTLY_REQUIREMENTS = ("evidently>=0.7,<0.8", "pandas<3", "pyarrow")
EVIDENTLY_READY = (
    "import evidently, pandas, pyarrow; "
    "assert evidently.__version__.startswith('0.7.'), evidently.__version__; "
    "assert int(pandas.__version__.split('.')[0]) < 3"
)
FULL_ROWS = 1_000_000
QUICK_ROWS = 50_000
SEED = 11
FULL_TARGET_S = 15.0  # Cauce's full computation, at most
RATIO_TARGET = 30.0  # Evidently / Cauce (full), at least

# The settings both sides are run with.
NUMERICAL_METRIC = "normalized_wasserstein"
CATEGORICAL_METRIC = "jensen_shannon"
THRESHOLD = 0.1
DRIFT_SHARE = 0.3


# -- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One generated column: how the reference is drawn and what changes in the current set."""

    name: str
    kind: str  # "numerical" | "categorical"
    shape: str  # numerical: normal, lognormal, uniform, exponential, counts; categorical: zipf
    a: float  # the shape's first parameter (mean, log-mean, low, scale, lambda; categories)
    b: float  # the second (sd, log-sd, high, -, -; zipf exponent)
    nulls: float = 0.0  # fraction of nulls, in both sets
    drift: str | None = None  # what changes in the current set; None: nothing


NUMERICAL_SHAPES = ["normal", "lognormal", "counts", "uniform", "exponential"]
# (column index, change): 10 of the 50 numerical columns drift, 2 of each shape
NUMERICAL_DRIFT = {
    0: "shift",
    1: "scale",
    2: "shift",
    3: "shift",
    4: "scale",
    15: "scale",
    26: "shift",
    32: "scale",
    38: "shift",
    44: "shift",
}
CATEGORY_COUNTS = [3, 5, 8, 12, 20, 30, 50, 4, 10, 25]
CATEGORICAL_DRIFT = {1: "reverse", 5: "rotate", 8: "new category"}


def columns() -> list[Column]:
    """The 60 columns of the benchmark, in order."""
    cols = []
    for i in range(50):
        shape = NUMERICAL_SHAPES[i % 5]
        k = i // 5  # 0..9: varies the parameters within a shape
        a, b = {
            "normal": (10.0 * k - 20.0, 1.0 + k),
            "lognormal": (0.1 * k, 0.3 + 0.07 * k),
            "counts": (3.0 + 4.0 * k, 0.0),
            "uniform": (-k, 5.0 + 3.0 * k),
            "exponential": (0.5 + k, 0.0),
        }[shape]
        nulls = [0.0, 0.02, 0.0, 0.1, 0.0, 0.05, 0.0][i % 7]
        cols.append(Column(f"num_{i:02d}", "numerical", shape, a, b, nulls, NUMERICAL_DRIFT.get(i)))
    for j, count in enumerate(CATEGORY_COUNTS):
        nulls = [0.0, 0.01, 0.0, 0.05][j % 4]
        exponent = 0.8 + 0.1 * (j % 5)
        cols.append(
            Column(
                f"cat_{j}", "categorical", "zipf", count, exponent, nulls, CATEGORICAL_DRIFT.get(j)
            )
        )
    return cols


def column_types() -> dict[str, str]:
    """Column name -> "numerical" | "categorical", as both sides are told."""
    return {c.name: c.kind for c in columns()}


def injected() -> list[str]:
    """The columns drift was injected into."""
    return [c.name for c in columns() if c.drift]


def _numbers(rng: Any, col: Column, rows: int, drifted: bool) -> Any:
    import numpy as np

    a, b = col.a, col.b
    change = col.drift if drifted else None
    if col.shape == "normal":
        if change == "shift":
            a += 0.4 * b
        elif change == "scale":
            b *= 1.6
        values = rng.normal(a, b, rows)
    elif col.shape == "lognormal":
        values = rng.lognormal(a, b, rows)
        if change == "shift":
            values = values + 0.4 * values.std()
        elif change == "scale":
            values = values * 1.5
    elif col.shape == "counts":
        lam = a * (1.35 if change == "shift" else 1.0)
        values = rng.poisson(lam, rows).astype(np.int64)
        if change == "scale":
            values = np.round(values * 1.3).astype(np.int64)
    elif col.shape == "uniform":
        if change == "shift":
            a, b = a + 0.2 * (b - a), b + 0.2 * (b - a)
        elif change == "scale":
            mid, half = (a + b) / 2, (b - a) / 2
            a, b = mid - 1.6 * half, mid + 1.6 * half
        values = rng.uniform(a, b, rows)
    elif col.shape == "exponential":
        values = rng.exponential(a * (1.5 if change else 1.0), rows)
        if change == "shift":
            values = values + 0.4 * a
    else:
        raise ValueError(col.shape)
    return values


def _categories(col: Column) -> list[str]:
    return [f"{col.name}_v{i:02d}" for i in range(int(col.a))]


def _probabilities(col: Column, drifted: bool) -> tuple[list[str], Any]:
    import numpy as np

    labels = _categories(col)
    p = 1.0 / np.arange(1, len(labels) + 1) ** col.b
    p = p / p.sum()
    change = col.drift if drifted else None
    if change == "reverse":
        p = p[::-1]
    elif change == "rotate":
        p = np.roll(p, len(labels) // 3)
    elif change == "new category":
        labels = [*labels, f"{col.name}_new"]
        p = np.append(0.85 * p, 0.15)
    return labels, p


def generate(path: Path, rows: int, seed: int, drifted: bool) -> None:
    """Write one of the two sets (``drifted``: the current one) to ``path`` as Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, int(drifted)])
    arrays = {}
    for col in columns():
        mask = rng.random(rows) < col.nulls if col.nulls else None
        if col.kind == "numerical":
            arrays[col.name] = pa.array(_numbers(rng, col, rows, drifted), mask=mask)
        else:
            labels, p = _probabilities(col, drifted)
            index = rng.choice(len(labels), size=rows, p=p).astype(np.int32)
            arrays[col.name] = pc.take(pa.array(labels), pa.array(index, mask=mask))
    table = pa.table(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def ensure_data(rows: int, seed: int) -> tuple[Path, Path]:
    """The reference and current Parquet files for ``rows`` and ``seed``, generated if missing."""
    paths = []
    for name, drifted in [("reference", False), ("current", True)]:
        path = DATA_DIR / f"{name}-{rows}-seed{seed}.parquet"
        if not path.exists():
            note(f"generating {rows:,} {name} rows x 60 columns into {path}")
            started = time.perf_counter()
            generate(path, rows, seed, drifted)
            note(f"generated in {time.perf_counter() - started:.1f} s")
        paths.append(path)
    return paths[0], paths[1]


# -- the two sides ----------------------------------------------------------------------------


def read_frames(reference: Path, current: Path) -> tuple[Any, Any, float]:
    """Both Parquet files as pandas DataFrames, and the seconds that took (never timed)."""
    import pandas as pd

    started = time.perf_counter()
    ref = pd.read_parquet(reference)
    cur = pd.read_parquet(current)
    return ref, cur, time.perf_counter() - started


def run_cauce(
    reference: Path,
    current: Path,
    reps: int,
    warmup: int = 1,
    between: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Read both files (untimed); then ``reps`` times: the full computation (profile the
    reference, then drift against it) and the stored-reference one (drift only, against the
    profile just built), calling ``between()`` after each pair (the other side's turn)."""
    import cauce
    from cauce.monitoring.drift import data_drift
    from cauce.monitoring.profiles import build_profile

    ref_df, cur_df, read_s = read_frames(reference, current)
    kinds = column_types()
    settings = {
        "numerical": NUMERICAL_METRIC,
        "categorical": CATEGORICAL_METRIC,
        "threshold": THRESHOLD,
        "drift_share": DRIFT_SHARE,
    }

    full, full_cpu, stored, stored_cpu, profile_s, reports = [], [], [], [], [], []
    for i in range(warmup + reps):
        started, cpu = time.perf_counter(), time.process_time()
        profile = build_profile(ref_df, columns=kinds)
        profiled = time.perf_counter()
        report = data_drift(profile, cur_df, **settings)
        full_s, full_cpu_s = time.perf_counter() - started, time.process_time() - cpu

        wall, cpu = time.perf_counter(), time.process_time()
        monitor_report = data_drift(profile, cur_df, **settings)
        stored_s, stored_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
        if i < warmup:
            continue
        full.append(full_s)
        full_cpu.append(full_cpu_s)
        profile_s.append(profiled - started)
        stored.append(stored_s)
        stored_cpu.append(stored_cpu_s)
        reports.extend([report, monitor_report])
        if between is not None:
            between()
    summaries = [_cauce_summary(r) for r in reports]
    if any(s != summaries[0] for s in summaries):
        raise SystemExit("Cauce gave different results on the same data")
    import numpy
    import pandas
    import scipy

    return {
        "version": cauce.__version__,
        "pandas_version": pandas.__version__,
        "numpy_version": numpy.__version__,
        "scipy_version": scipy.__version__,
        "reference_rows": len(ref_df),
        "current_rows": len(cur_df),
        "read_s": read_s,
        "settings": settings,
        "full_samples_s": full,
        "full_cpu_samples_s": full_cpu,
        "full_median_s": statistics.median(full),
        "profile_samples_s": profile_s,
        "stored_samples_s": stored,
        "stored_cpu_samples_s": stored_cpu,
        "stored_median_s": statistics.median(stored),
        **summaries[0],
    }


def _cauce_summary(report: Any) -> dict[str, Any]:
    return {
        "columns": {
            f.name: {
                "score": f.value,
                "method": f.metric,
                "threshold": f.threshold,
                "drifted": f.drifted,
            }
            for f in report.features
        },
        "drifted_count": sum(bool(f.drifted) for f in report.features),
        "drifted_share": report.drifted_share,
        "drift_share": report.drift_share,
        "dataset_drift": report.dataset_drift,
    }


def ensure_evidently_venv(venv: Path) -> Path:
    """Create ``venv`` with Evidently 0.7, pandas < 3 and pyarrow unless it has them; its python."""
    return ensure_venv(venv, EVIDENTLY_REQUIREMENTS, EVIDENTLY_READY)


class EvidentlyWorker:
    """The Evidently worker in its own process and venv, running one report per :meth:`turn`.

    It reads the data (untimed) when started; the two sides then take turns, so that both see
    the same load from whatever else runs on the machine.
    """

    def __init__(self, python: Path, reference: Path, current: Path, reps: int) -> None:
        BENCH.mkdir(exist_ok=True)
        self.folder = tempfile.TemporaryDirectory(prefix="drift-evidently-", dir=BENCH)
        tmp = Path(self.folder.name)
        kinds = tmp / "columns.json"
        kinds.write_text(json.dumps(column_types()))
        self.out = tmp / "result.json"
        self.left = reps
        cmd = [str(python), str(WORKER), "--reference", str(reference), "--current", str(current)]
        cmd += ["--columns", str(kinds), "--drift-share", str(DRIFT_SHARE)]
        cmd += ["--reps", str(reps), "--out", str(self.out), "--turns"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")}
        env["DO_NOT_TRACK"] = "1"  # Evidently's telemetry (only its UI sends any)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tmp
        )
        self._expect("ready")

    def turn(self) -> None:
        """Run one of the worker's reports (nothing once its ``reps`` are done)."""
        if self.left > 0:
            self.left -= 1
            note(f"Evidently: one report run ({self.left} left after it)")
            assert self.proc.stdin is not None
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self._expect("done")

    def result(self) -> dict[str, Any]:
        """The worker's figures, after the turns not taken yet."""
        while self.left > 0:
            self.turn()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait()
        try:
            if code != 0:
                raise SystemExit(f"the Evidently side failed (exit {code})")
            result: dict[str, Any] = json.loads(self.out.read_text())
        finally:
            self.folder.cleanup()
        return result

    def _expect(self, word: str) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # anything Evidently or pandas print is skipped
            if line.strip() == word:
                return
        self.proc.kill()
        raise SystemExit(f"the Evidently side failed before saying {word!r} (its stderr is above)")


# -- comparing and reporting -------------------------------------------------------------------


def compare(
    cauce_side: dict[str, Any], evidently_side: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per column with both sides' scores and verdicts; the disagreements."""
    table, problems = [], []
    for col in columns():
        mine = cauce_side["columns"][col.name]
        row: dict[str, Any] = {
            "column": col.name,
            "kind": col.kind,
            "injected": col.drift,
            "cauce_method": mine["method"],
            "cauce_score": mine["score"],
            "cauce_drifted": mine["drifted"],
            "evidently_method": None,
            "evidently_score": None,
            "evidently_drifted": None,
        }
        if mine["drifted"] != bool(col.drift):
            problems.append(
                f"{col.name}: Cauce says {_verdict(mine['drifted'])} (score {mine['score']}), "
                f"drift was {'injected' if col.drift else 'not injected'}"
            )
        if evidently_side is not None:
            theirs = evidently_side["columns"][col.name]
            row["evidently_method"] = theirs["method"]
            row["evidently_score"] = theirs["score"]
            row["evidently_drifted"] = theirs["drifted"]
            if theirs["drifted"] != mine["drifted"]:
                problems.append(
                    f"{col.name}: Cauce says {_verdict(mine['drifted'])} "
                    f"({mine['score']:.4f}), Evidently {_verdict(theirs['drifted'])} "
                    f"({theirs['score']:.4f})"
                )
        table.append(row)
    if (
        evidently_side is not None
        and evidently_side["dataset_drift"] != cauce_side["dataset_drift"]
    ):
        problems.append(
            f"dataset drift: Cauce {cauce_side['dataset_drift']}, "
            f"Evidently {evidently_side['dataset_drift']}"
        )
    return table, problems


def format_columns(rows: list[dict[str, Any]], evidently: bool) -> str:
    """The columns either side flags or drift was injected into, and a line for the others."""
    header = ["column", "injected", "Cauce score", "Cauce"]
    if evidently:
        header += ["Evidently score", "Evidently"]
    lines = [header]
    quiet = []
    for r in rows:
        if not (r["injected"] or r["cauce_drifted"] or r["evidently_drifted"]):
            quiet.append(r)
            continue
        line = [
            r["column"],
            r["injected"] or "-",
            _score(r["cauce_score"]),
            _verdict(r["cauce_drifted"]),
        ]
        if evidently:
            line += [_score(r["evidently_score"]), _verdict(r["evidently_drifted"])]
        lines.append(line)
    text = _table(lines)
    if quiet:
        top = max(quiet, key=lambda r: r["cauce_score"] or 0.0)
        text += (
            f"\nthe other {len(quiet)} columns: no drift injected, flagged by neither side; "
            f"highest Cauce score {_score(top['cauce_score'])} ({top['column']})"
        )
        if evidently:
            top_e = max(quiet, key=lambda r: r["evidently_score"] or 0.0)
            text += (
                f", highest Evidently score {_score(top_e['evidently_score'])} ({top_e['column']})"
            )
    return text


def score_gaps(rows: list[dict[str, Any]]) -> str:
    """How far the two sides' scores are apart, per kind of column."""
    out = []
    for kind in ("numerical", "categorical"):
        pairs = [
            (r["cauce_score"], r["evidently_score"])
            for r in rows
            if r["kind"] == kind and r["cauce_score"] is not None and r["evidently_score"]
        ]
        if not pairs:
            continue
        gap = max(abs(c - e) for c, e in pairs)
        ratios = [c / e for c, e in pairs if e > 0.05]
        line = f"{kind}: largest |Cauce - Evidently| score difference {gap:.4f}"
        if ratios:
            line += f"; Cauce/Evidently on drifted columns {min(ratios):.3f}-{max(ratios):.3f}"
        out.append(line)
    return "\n".join(out)


def format_timing(result: dict[str, Any]) -> str:
    """The timing table: medians, ratios, targets, verdicts."""
    c = result["cauce"]
    e = result.get("evidently")
    e_s = e["median_s"] if e else None
    ratio, stored_ratio = result["ratio"], result["stored_ratio"]
    size = f"{c['reference_rows']:,} + {c['current_rows']:,} rows"
    lines = [
        ["operation", "Cauce", "Evidently", "Evidently/Cauce", "target", "result"],
        [
            f"full: build_profile + data_drift ({size})",
            _fmt_s(c["full_median_s"]),
            _fmt_s(e_s),
            _ratio(ratio),
            f"<= {FULL_TARGET_S:g} s",
            _pass(result["full_target_met"]),
        ],
        [
            "full, against Evidently's DataDriftPreset",
            _fmt_s(c["full_median_s"]),
            _fmt_s(e_s),
            _ratio(ratio),
            f">= {RATIO_TARGET:g}x",
            _pass(result["ratio_target_met"]),
        ],
        [
            "stored reference: data_drift only",
            _fmt_s(c["stored_median_s"]),
            _fmt_s(e_s),
            _ratio(stored_ratio),
            "-",
            "-",
        ],
    ]
    text = _table(lines)
    if e:
        text += (
            "\n(Evidently has no stored-reference mode: every run of its report redoes the "
            "reference, so the same figure stands in both rows)"
        )
    text += "\nsamples (s): Cauce full " + " ".join(f"{s:.3f}" for s in c["full_samples_s"])
    text += ", stored reference " + " ".join(f"{s:.3f}" for s in c["stored_samples_s"])
    if e:
        text += "; Evidently " + " ".join(f"{s:.3f}" for s in e["samples_s"])
    text += (
        f"\nCPU time (median): Cauce full {_fmt_s(statistics.median(c['full_cpu_samples_s']))}, "
        f"stored reference {_fmt_s(statistics.median(c['stored_cpu_samples_s']))}"
    )
    if e:
        text += f", Evidently {_fmt_s(statistics.median(e['cpu_samples_s']))}"
    text += (
        f"\nstored reference / full: {c['stored_median_s'] / c['full_median_s']:.2f} "
        f"(build_profile of the reference, median "
        f"{_fmt_s(statistics.median(c['profile_samples_s']))}, is not repeated by a monitor run)"
    )
    return text


def _table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = [
        " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(text)


def _verdict(drifted: bool | None) -> str:
    return {True: "DRIFT", False: "ok", None: "-"}[drifted]


def _pass(met: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[met]


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


# -- entry point ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Cauce vs Evidently: data drift of the same two Parquet files.",
        epilog="Example: python benchmarks/drift_vs_evidently.py --json .bench/drift.json",
    )
    parser.add_argument(
        "--rows", type=int, help=f"rows of each set, reference and current (default {FULL_ROWS:,})"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_ROWS:,} rows, one run each (smoke test)"
    )
    parser.add_argument("--cauce-only", action="store_true", help="skip Evidently entirely")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--reps", type=int, help="Cauce's timed runs (default 3; --quick 1)")
    parser.add_argument(
        "--evidently-reps", type=int, help="Evidently's timed runs (default 1: minutes each)"
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"data seed (default {SEED})")
    parser.add_argument(
        "--evidently-python",
        type=Path,
        help="use this interpreter (with Evidently 0.7) instead of the venv",
    )
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help=f"Evidently venv (default {DEFAULT_VENV})"
    )
    parser.add_argument(
        "--strict", action="store_true", help="also exit 1 when a speed target is missed"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate the data, run both sides, compare the verdicts, print; the exit status."""
    args = parse_args(argv)
    rows = args.rows or (QUICK_ROWS if args.quick else FULL_ROWS)
    cauce_reps = args.reps or (1 if args.quick else 3)
    evidently_reps = args.evidently_reps or 1
    reference, current = ensure_data(rows, args.seed)
    evidently_python = None
    if not args.cauce_only:
        evidently_python = args.evidently_python or ensure_evidently_venv(args.venv)

    load_before = load_average()
    if load_before is not None and load_before > 0.5 * (os.cpu_count() or 1):
        note(f"load average is {load_before:.2f}: other processes will add noise to the figures")
    evidently = None
    if evidently_python is not None:
        note("Evidently: reading both files (not timed)")
        evidently = EvidentlyWorker(evidently_python, reference, current, evidently_reps)
    note(
        f"Cauce: reading both files (not timed), one warm-up, then {cauce_reps} timed runs of "
        "full + stored reference"
        + (f" taking turns with {evidently_reps} of Evidently" if evidently else "")
    )
    cauce_side = run_cauce(
        reference, current, cauce_reps, between=evidently.turn if evidently else None
    )
    evidently_side = evidently.result() if evidently else None

    column_rows, problems = compare(cauce_side, evidently_side)
    e_s = evidently_side["median_s"] if evidently_side else None
    ratio = e_s / cauce_side["full_median_s"] if e_s else None
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "quick": args.quick,
        "rows": rows,
        "columns": column_types(),
        "injected": {c.name: c.drift for c in columns() if c.drift},
        "seed": args.seed,
        "data": {"reference": str(reference), "current": str(current)},
        "data_bytes": reference.stat().st_size + current.stat().st_size,
        "machine": machine(),
        "load_average_1min": {"before": load_before, "after": load_average()},
        "cauce": cauce_side,
        "evidently": evidently_side,
        "column_verdicts": column_rows,
        "disagreements": problems,
        "ratio": ratio,
        "stored_ratio": e_s / cauce_side["stored_median_s"] if e_s else None,
        "targets": {"full": f"<= {FULL_TARGET_S:g} s", "ratio": f">= {RATIO_TARGET:g}x"},
        "full_target_met": cauce_side["full_median_s"] <= FULL_TARGET_S,
        "ratio_target_met": None if ratio is None else ratio >= RATIO_TARGET,
    }

    others = (
        f"Evidently {evidently_side['evidently_version']} "
        f"(pandas {evidently_side['pandas_version']})"
        if evidently_side
        else "Evidently skipped"
    )
    print(
        f"Cauce {cauce_side['version']} (pandas {cauce_side['pandas_version']}) vs {others}; "
        f"{rows:,} reference + {rows:,} current rows x 60 columns (50 numerical, 10 categorical; "
        f"{result['data_bytes'] / 1e6:.0f} MB Parquet); {result['machine']['cpu_count']} CPUs, "
        f"Python {result['machine']['python']}"
    )
    if args.quick:
        print("(--quick: too little data for the timing verdicts to mean anything)")
    print(format_columns(column_rows, evidently_side is not None))
    print(
        f"drifted share: Cauce {cauce_side['drifted_share']:.3f} "
        f"(dataset drift {cauce_side['dataset_drift']})"
        + (
            f", Evidently {evidently_side['drifted_share']:.3f} "
            f"(dataset drift {evidently_side['dataset_drift']})"
            if evidently_side
            else ""
        )
        + f"; drift_share {DRIFT_SHARE}"
    )
    if evidently_side:
        print(score_gaps(column_rows))
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
    missed = result["full_target_met"] is False or result["ratio_target_met"] is False
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
