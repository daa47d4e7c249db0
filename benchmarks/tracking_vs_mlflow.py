"""Cauce's tracking hot path against MLflow's, each on a fresh SQLite database, side by side.

The same workload (``tracking_worker.py``) runs in a fresh process per side: Cauce with this
interpreter, twice (``CAUCE_SQLITE_SYNC`` normal, the default, and full), and MLflow with the
interpreter of a separate virtual environment (``.bench/mlflow-venv``, created on first use with
``mlflow==3.17.2`` from PyPI). The sides take turns for several rounds, so that a busy neighbour
on the machine slows both alike; the figures are medians over the samples of every round. Import
times are the wall time of fresh ``python -c "import …"`` processes, also taken in turns. The
table shows the medians, the ratio MLflow/Cauce and whether Cauce meets its target; the targets
apply to Cauce's default (normal) mode.

Example::

    python benchmarks/tracking_vs_mlflow.py --json .bench/tracking.json
    python benchmarks/tracking_vs_mlflow.py --quick --cauce-only      # smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from peers import ensure_venv, load_average, machine, note

MLFLOW_VERSION = "3.17.2"
MLFLOW_REQUIREMENTS = (f"mlflow=={MLFLOW_VERSION}", "skops")
REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("tracking_worker.py")
DEFAULT_VENV = REPO / ".bench" / "mlflow-venv"
OPERATIONS = ("log_metric", "log_metrics", "empty_run")


@dataclass(frozen=True)
class Counts:
    """How many calls each measurement makes in one round; the sides take turns ``rounds`` times."""

    rounds: int
    metric_calls: int
    metric_reps: int
    metric_warmup: int
    batch_calls: int
    batch_size: int
    batch_warmup: int
    run_calls: int
    run_warmup: int
    import_reps: int

    def worker_flags(self) -> list[str]:
        """The worker's command-line flags (named like the fields)."""
        flags = []
        for name, value in asdict(self).items():
            if name not in ("rounds", "import_reps"):
                flags += ["--" + name.replace("_", "-"), str(value)]
        return flags


# Each round: 2 runs of 2,000 log_metric calls, 20 log_metrics calls in one run, 100 empty runs
# (as one long round would); the rounds add samples taken at other moments. Imports: 10 in all.
FULL = Counts(
    rounds=3,
    metric_calls=2000,
    metric_reps=2,
    metric_warmup=50,
    batch_calls=20,
    batch_size=1000,
    batch_warmup=2,
    run_calls=100,
    run_warmup=5,
    import_reps=10,
)
QUICK = Counts(
    rounds=1,
    metric_calls=50,
    metric_reps=2,
    metric_warmup=5,
    batch_calls=3,
    batch_size=1000,
    batch_warmup=1,
    run_calls=5,
    run_warmup=1,
    import_reps=2,
)


@dataclass(frozen=True)
class Target:
    """What Cauce must reach: MLflow/Cauce at least ``value``, or at most ``value`` seconds."""

    kind: str  # "ratio" or "max_s"
    value: float

    def describe(self) -> str:
        """The target as the table prints it."""
        return f">= {self.value:g}x" if self.kind == "ratio" else f"<= {self.value:g} s"

    def met(self, cauce_s: float, ratio: float | None) -> bool | None:
        """Whether the target is met; None when it cannot be judged (no MLflow figure)."""
        if self.kind == "max_s":
            return cauce_s <= self.value
        return None if ratio is None else ratio >= self.value


TARGETS = {
    "log_metric": Target("ratio", 30),
    "log_metrics": Target("ratio", 20),
    "empty_run": Target("ratio", 20),
    "import": Target("max_s", 0.3),
}


@dataclass(frozen=True)
class Side:
    """One contestant: a name in the report, its interpreter, the worker's side and sync mode."""

    name: str
    python: Path
    library: str
    sync: str | None = None


# -- the MLflow environment -----------------------------------------------------------------


def ensure_mlflow_venv(venv: Path) -> Path:
    """Create ``venv`` with MLflow and skops from PyPI unless it already has them; its python."""
    ready = f"import mlflow, sys; sys.exit(mlflow.__version__ != {MLFLOW_VERSION!r})"
    return ensure_venv(venv, MLFLOW_REQUIREMENTS, ready, env=clean_env())


# -- measurements ---------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CAUCE_* and MLFLOW_* settings, MLflow telemetry off, plus extra.

    An inherited ``CAUCE_DB_URL`` or ``MLFLOW_ENABLE_ASYNC_LOGGING`` would change what is measured.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUCE_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def run_worker(side: Side, counts: Counts) -> dict[str, Any]:
    """Run one round of the workload for a side, in a fresh process on a fresh database."""
    label = side.name + (f" (sync={side.sync})" if side.sync else "")
    with tempfile.TemporaryDirectory(prefix=f"bench-{side.name}-") as tmp:
        folder = Path(tmp)
        (folder / "db").mkdir()
        out = folder / "result.json"
        cmd = [str(side.python), str(WORKER), "--side", side.library, "--dir", str(folder / "db")]
        cmd += ["--out", str(out), *counts.worker_flags()]
        env = clean_env(CAUCE_SQLITE_SYNC=side.sync) if side.sync else clean_env()
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder)
        if proc.returncode != 0:
            raise SystemExit(f"the {label} side failed (exit {proc.returncode}):\n{proc.stderr}")
        result: dict[str, Any] = json.loads(out.read_text())
    result["wall_s"] = time.perf_counter() - started
    return result


def run_rounds(sides: list[Side], counts: Counts) -> dict[str, list[dict[str, Any]]]:
    """Every side's results, round by round; the order of the sides rotates each round."""
    results: dict[str, list[dict[str, Any]]] = {side.name: [] for side in sides}
    for round_no in range(counts.rounds):
        shift = round_no % len(sides)
        for side in sides[shift:] + sides[:shift]:
            note(f"round {round_no + 1}/{counts.rounds}: {side.name}")
            results[side.name].append(run_worker(side, counts))
    return results


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over all rounds: medians of the pooled samples, rounds kept."""
    merged: dict[str, Any] = {"version": rounds[0]["version"], "sqlite": rounds[0]["sqlite"]}
    for op in OPERATIONS:
        wall = [s for r in rounds for s in r[op]["samples_s"]]
        cpu = [s for r in rounds for s in r[op]["cpu_samples_s"]]
        merged[op] = {
            "median_s": statistics.median(wall),
            "cpu_median_s": statistics.median(cpu),
            "samples": len(wall),
            "round_medians_s": [r[op]["median_s"] for r in rounds],
        }
    merged["rounds"] = rounds
    return merged


def time_imports(commands: dict[str, tuple[Path, str]], reps: int) -> dict[str, Any]:
    """Median wall time of each ``python -c code`` over ``reps`` fresh processes, in turns.

    One untimed pass comes first: it may compile .pyc files and fill the page cache.
    """
    samples: dict[str, list[float]] = {name: [] for name in commands}
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        for i in range(reps + 1):
            for name, (python, code) in commands.items():
                started = time.perf_counter()
                subprocess.run([str(python), "-c", code], check=True, env=env, cwd=tmp)
                if i > 0:
                    samples[name].append(time.perf_counter() - started)
    return {
        name: {
            "code": commands[name][1],
            "python": str(commands[name][0]),
            "median_s": statistics.median(values),
            "min_s": min(values),
            "max_s": max(values),
            "samples_s": values,
        }
        for name, values in samples.items()
    }


# -- the report -----------------------------------------------------------------------------


def build_rows(results: dict[str, Any], counts: Counts) -> list[dict[str, Any]]:
    """One row per operation: medians, ratios (overall and per round), target and verdict."""
    sides = results["sides"]
    imports = results["imports"]
    mlflow = sides.get("mlflow")
    labels = {
        "log_metric": "log_metric (per call)",
        "log_metrics": f"log_metrics({counts.batch_size})",
        "empty_run": "empty run (start + end)",
    }
    rows = []
    for op in OPERATIONS:
        row = _row(
            op,
            labels[op],
            sides["cauce"][op]["median_s"],
            sides["cauce_full"][op]["median_s"],
            mlflow[op]["median_s"] if mlflow else None,
        )
        if mlflow:
            pairs = zip(
                mlflow[op]["round_medians_s"], sides["cauce"][op]["round_medians_s"], strict=True
            )
            row["ratio_per_round"] = [m / c for m, c in pairs]
        rows.append(row)
    mlflow_import = imports["mlflow"]["median_s"] if "mlflow" in imports else None
    mlflow_start = imports["mlflow_python"]["median_s"] if "mlflow_python" in imports else None
    rows.append(
        _row("import", "import (python -c)", imports["cauce"]["median_s"], None, mlflow_import)
    )
    startup = imports["python"]["median_s"]
    rows.append(_row("startup", "python -c pass (reference)", startup, None, mlflow_start))
    return rows


def _row(
    key: str, label: str, cauce_s: float, full_s: float | None, mlflow_s: float | None
) -> dict[str, Any]:
    target = TARGETS.get(key)
    ratio = mlflow_s / cauce_s if mlflow_s is not None else None
    ratio_full = mlflow_s / full_s if mlflow_s is not None and full_s is not None else None
    return {
        "operation": key,
        "label": label,
        "cauce_s": cauce_s,
        "cauce_full_s": full_s,
        "mlflow_s": mlflow_s,
        "ratio": ratio,
        "ratio_full": ratio_full,
        "target": target.describe() if target else None,
        "passed": target.met(cauce_s, ratio) if target else None,
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The results as a plain-text table."""
    header = [
        "operation",
        "Cauce",
        "Cauce sync=full",
        "MLflow",
        "MLflow/Cauce",
        "MLflow/Cauce(full)",
        "target",
        "result",
    ]
    lines = [header]
    for r in rows:
        verdict = {True: "PASS", False: "FAIL", None: "n/a" if r["target"] else "-"}[r["passed"]]
        lines.append(
            [
                r["label"],
                _fmt_s(r["cauce_s"]),
                _fmt_s(r["cauce_full_s"]),
                _fmt_s(r["mlflow_s"]),
                _fmt_x(r["ratio"]),
                _fmt_x(r["ratio_full"]),
                r["target"] or "-",
                verdict,
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    text.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(text)


def format_details(sides: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Ratios per round, worker CPU time (steadier than wall time on a busy machine), SQLite."""
    lines = []
    per_round = [r for r in rows if r.get("ratio_per_round")]
    if per_round:
        lines.append("MLflow/Cauce in each round:")
        for r in per_round:
            lines.append(
                f"  {r['operation']}: " + " ".join(_fmt_x(x) for x in r["ratio_per_round"])
            )
    lines.append("CPU time of the worker process (median per operation):")
    for op in OPERATIONS:
        cells = [f"{name} {_fmt_s(side[op]['cpu_median_s'])}" for name, side in sides.items()]
        lines.append(f"  {op}: " + ", ".join(cells))
    lines.append("SQLite settings seen by each side's own connection:")
    for name, side in sides.items():
        sql = side["sqlite"]
        lines.append(
            f"  {name}: journal_mode={sql['journal_mode']} synchronous={sql['synchronous']}"
        )
    return "\n".join(lines)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def _fmt_x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1f}x"


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="Cauce vs MLflow tracking on SQLite: log_metric, log_metrics, runs, import.",
        epilog="Example: python benchmarks/tracking_vs_mlflow.py --json .bench/tracking.json",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument("--cauce-only", action="store_true", help="skip MLflow entirely")
    parser.add_argument(
        "--mlflow-python", type=Path, help="use this interpreter (with mlflow) instead of the venv"
    )
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help=f"MLflow venv (default {DEFAULT_VENV})"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: exit 0)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the sides in turns, print the table, write the JSON; the exit status."""
    args = parse_args(argv)
    counts = QUICK if args.quick else FULL
    cauce_python = Path(sys.executable)
    sides = [
        Side("cauce", cauce_python, "cauce"),
        Side("cauce_full", cauce_python, "cauce", sync="full"),
    ]
    imports = {"cauce": (cauce_python, "import cauce"), "python": (cauce_python, "pass")}
    if not args.cauce_only:
        mlflow_python = args.mlflow_python or ensure_mlflow_venv(args.venv)
        sides.append(Side("mlflow", mlflow_python, "mlflow"))
        imports["mlflow"] = (mlflow_python, "import mlflow")
        imports["mlflow_python"] = (mlflow_python, "pass")

    load_before = load_average()
    if load_before is not None and load_before > 0.5 * (os.cpu_count() or 1):
        note(f"load average is {load_before:.2f}: other processes will add noise to the figures")
    merged = {name: merge_rounds(r) for name, r in run_rounds(sides, counts).items()}
    note("timing imports in fresh processes")
    import_times = time_imports(imports, counts.import_reps)

    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "quick": args.quick,
        "machine": machine(sqlite=sqlite3.sqlite_version),
        "load_average_1min": {"before": load_before, "after": load_average()},
        "cauce_version": merged["cauce"]["version"],
        "mlflow_version": merged["mlflow"]["version"] if "mlflow" in merged else None,
        "counts_per_round": asdict(counts),
        "sides": merged,
        "imports": import_times,
    }
    rows = build_rows(results, counts)
    results["rows"] = rows

    mlflow_note = f"MLflow {results['mlflow_version']}" if "mlflow" in merged else "MLflow skipped"
    print(
        f"Cauce {results['cauce_version']} vs {mlflow_note}; medians over {counts.rounds} "
        f"round(s); {results['machine']['cpu_count']} CPUs, Python "
        f"{results['machine']['python']}, SQLite {results['machine']['sqlite']}"
    )
    if args.quick:
        print("(--quick: counts too small for the verdicts to mean anything)")
    print(format_table(rows))
    print(format_details(merged, rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"results written to {args.json}")
    missed = [r["label"] for r in rows if r["passed"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
