"""Cauce's tracking hot path against MLflow's, each on a fresh SQLite database, side by side.

The same workload (``tracking_worker.py``) runs in a fresh process per side: Cauce with this
interpreter, twice (``CAUCE_SQLITE_SYNC`` normal, the default, and full), and MLflow with the
interpreter of a separate virtual environment (``.bench/mlflow-venv``, created on first use with
``mlflow==3.17.2`` from PyPI). Import times are the wall time of fresh ``python -c "import …"``
processes. The table shows medians, the ratio MLflow/Cauce and whether Cauce meets its target;
the targets apply to Cauce's default (normal) mode.

Example::

    python benchmarks/tracking_vs_mlflow.py --json .bench/tracking.json
    python benchmarks/tracking_vs_mlflow.py --quick --cauce-only      # smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MLFLOW_VERSION = "3.17.2"
MLFLOW_REQUIREMENTS = (f"mlflow=={MLFLOW_VERSION}", "skops")
REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("tracking_worker.py")
DEFAULT_VENV = REPO / ".bench" / "mlflow-venv"


@dataclass(frozen=True)
class Counts:
    """How many calls each measurement makes."""

    metric_calls: int
    metric_reps: int
    metric_warmup: int
    batch_calls: int
    batch_size: int
    batch_warmup: int
    run_calls: int
    run_warmup: int
    import_reps: int


FULL = Counts(2000, 5, 50, 20, 1000, 2, 100, 5, 10)
QUICK = Counts(50, 2, 5, 3, 1000, 1, 5, 1, 2)


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


# -- the MLflow environment -----------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment."""
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def mlflow_version(python: Path) -> str | None:
    """The MLflow version importable by ``python``, or None."""
    proc = subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_mlflow_venv(venv: Path) -> Path:
    """Create ``venv`` with MLflow and skops from PyPI unless it already has them; its python."""
    python = venv_python(venv)
    if python.exists() and mlflow_version(python) == MLFLOW_VERSION:
        return python
    if not python.exists():
        _note(f"creating {venv} (python -m venv)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _note(f"installing {' '.join(MLFLOW_REQUIREMENTS)} into {venv} (takes a minute or two)")
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            *MLFLOW_REQUIREMENTS,
        ],
        check=True,
        stdout=sys.stderr,
    )
    return python


# -- measurements ---------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without CAUCE_* and MLFLOW_* settings, MLflow telemetry off, plus extra.

    An inherited ``CAUCE_DB_URL`` or ``MLFLOW_ENABLE_ASYNC_LOGGING`` would change what is measured.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAUCE_", "MLFLOW_"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra)
    return env


def run_worker(python: Path, side: str, counts: Counts, sync: str | None = None) -> dict[str, Any]:
    """Run the workload for one side in a fresh process on a fresh database; its results."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{side}-") as tmp:
        folder = Path(tmp)
        out = folder / "result.json"
        cmd = [str(python), str(WORKER), "--side", side, "--dir", str(folder / "db")]
        cmd += ["--out", str(out)]
        for name, value in asdict(counts).items():
            if name != "import_reps":  # the worker's flags are the Counts fields
                cmd += ["--" + name.replace("_", "-"), str(value)]
        (folder / "db").mkdir()
        env = clean_env(CAUCE_SQLITE_SYNC=sync) if sync else clean_env()
        label = side + (f" (sync={sync})" if sync else "")
        _note(f"running the {label} side")
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder)
        if proc.returncode != 0:
            raise SystemExit(f"the {label} side failed (exit {proc.returncode}):\n{proc.stderr}")
        result: dict[str, Any] = json.loads(out.read_text())
        result["wall_s"] = time.perf_counter() - started
        return result


def time_import(python: Path, code: str, reps: int) -> dict[str, Any]:
    """Median wall time of ``python -c code`` over ``reps`` fresh processes (one untimed first)."""
    samples: list[float] = []
    env = clean_env()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        for i in range(reps + 1):
            started = time.perf_counter()
            subprocess.run([str(python), "-c", code], check=True, env=env, cwd=tmp)
            if i > 0:  # the first one may compile .pyc files and fill the page cache
                samples.append(time.perf_counter() - started)
    return {
        "code": code,
        "reps": reps,
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "samples_s": samples,
    }


# -- the report -----------------------------------------------------------------------------


def build_rows(results: dict[str, Any], counts: Counts) -> list[dict[str, Any]]:
    """One row per operation: medians, ratios, target and verdict."""
    sides = results["sides"]
    imports = results["imports"]
    mlflow = sides.get("mlflow")
    operations = [
        ("log_metric", "log_metric (per call)"),
        ("log_metrics", f"log_metrics({counts.batch_size})"),
        ("empty_run", "empty run (start + end)"),
    ]
    rows = []
    for key, label in operations:
        rows.append(
            _row(
                key,
                label,
                sides["cauce"][key]["median_s"],
                sides["cauce_full"][key]["median_s"],
                mlflow[key]["median_s"] if mlflow else None,
            )
        )
    rows.append(
        _row(
            "import",
            "import (python -c)",
            imports["cauce"]["median_s"],
            None,
            imports["mlflow"]["median_s"] if "mlflow" in imports else None,
        )
    )
    rows.append(
        _row(
            "startup",
            "python -c pass (reference)",
            imports["python"]["median_s"],
            None,
            imports["mlflow_python"]["median_s"] if "mlflow_python" in imports else None,
        )
    )
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


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def _load() -> float | None:
    """The 1-minute load average, where the system has one."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _note(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


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
    """Run both sides, print the table, write the JSON; the exit status."""
    args = parse_args(argv)
    counts = QUICK if args.quick else FULL
    mlflow_python: Path | None = None
    if not args.cauce_only:
        mlflow_python = args.mlflow_python or ensure_mlflow_venv(args.venv)
    cauce_python = Path(sys.executable)
    load_before = _load()
    if load_before is not None and load_before > 0.5 * (os.cpu_count() or 1):
        _note(f"load average is {load_before:.2f}: other processes will add noise to the figures")

    sides = {
        "cauce": run_worker(cauce_python, "cauce", counts),
        "cauce_full": run_worker(cauce_python, "cauce", counts, sync="full"),
    }
    if mlflow_python is not None:
        sides["mlflow"] = run_worker(mlflow_python, "mlflow", counts)

    _note("timing imports in fresh processes")
    imports = {
        "cauce": time_import(cauce_python, "import cauce", counts.import_reps),
        "python": time_import(cauce_python, "pass", counts.import_reps),
    }
    if mlflow_python is not None:
        imports["mlflow"] = time_import(mlflow_python, "import mlflow", counts.import_reps)
        imports["mlflow_python"] = time_import(mlflow_python, "pass", counts.import_reps)

    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "quick": args.quick,
        "machine": machine(),
        "load_average_1min": {"before": load_before, "after": _load()},
        "cauce_version": sides["cauce"]["version"],
        "mlflow_version": sides["mlflow"]["version"] if "mlflow" in sides else None,
        "counts": asdict(counts),
        "sides": sides,
        "imports": imports,
    }
    rows = build_rows(results, counts)
    results["rows"] = rows

    mlflow_note = f"MLflow {results['mlflow_version']}" if "mlflow" in sides else "MLflow skipped"
    print(
        f"Cauce {results['cauce_version']} vs {mlflow_note}; medians; "
        f"{results['machine']['cpu_count']} CPUs, Python {results['machine']['python']}, "
        f"SQLite {results['machine']['sqlite']}"
    )
    if args.quick:
        print("(--quick: counts too small for the verdicts to mean anything)")
    print(format_table(rows))
    for name, side in sides.items():
        sql = side["sqlite"]
        print(f"{name}: journal_mode={sql['journal_mode']} synchronous={sql['synchronous']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"results written to {args.json}")
    missed = [r["label"] for r in rows if r["passed"] is False]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
