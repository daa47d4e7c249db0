"""Evidently's side of the drift benchmark, run by ``drift_vs_evidently.py`` in Evidently's venv.

It imports only the standard library at the top, so the benchmark can ship it to any
interpreter. It reads the reference and current Parquet files with pandas (not timed), then
times, per run, what turns the two DataFrames into a drift result with Evidently 0.7's API:

    Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=[...],
                                                              categorical_columns=[...]))
    Report([DataDriftPreset(drift_share=...)], include_tests=True).run(current, reference)

``include_tests=True`` makes Evidently attach its own verdicts (a test per column, failed when
the column drifted, and one on the share of drifted columns); without it the snapshot holds
only the scores. Per column it reports the drift score, the method Evidently chose (its default
for more than 1,000 reference rows: the normalized Wasserstein distance for numerical columns,
the Jensen-Shannon distance for categorical ones) with its threshold, and the verdict; and the
share and count of drifted columns with the dataset-level verdict.

Example::

    .bench/evidently-venv/bin/python benchmarks/drift_evidently_worker.py \\
        --reference .bench/drift/reference-50000-seed11.parquet \\
        --current .bench/drift/current-50000-seed11.parquet --columns columns.json --out r.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def definition(columns: dict[str, str]) -> Any:
    """The column types, declared: nothing is left for Evidently to infer."""
    from evidently import DataDefinition

    return DataDefinition(
        numerical_columns=[c for c, kind in columns.items() if kind == "numerical"],
        categorical_columns=[c for c, kind in columns.items() if kind == "categorical"],
    )


def run_once(reference: Any, current: Any, columns: dict[str, str], drift_share: float) -> Any:
    """One full drift computation, from the two DataFrames to Evidently's snapshot."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    data_definition = definition(columns)
    ref = Dataset.from_pandas(reference, data_definition=data_definition)
    cur = Dataset.from_pandas(current, data_definition=data_definition)
    report = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True)
    return report.run(cur, ref)


def summarize(snapshot: Any) -> dict[str, Any]:
    """Per column: score, method, threshold, verdict; the dataset-level figures (not timed)."""
    result = snapshot.dict()
    by_id: dict[str, dict[str, Any]] = {}
    share: dict[str, Any] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            by_id[metric["id"]] = {
                "column": config["column"],
                "score": float(metric["value"]),
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "drifted": None,
            }
        elif kind == "DriftedColumnsCount":
            share = {
                "id": metric["id"],
                "count": int(metric["value"]["count"]),
                "share": float(metric["value"]["share"]),
                "drift_share": config.get("drift_share"),
            }
    dataset_drift = None
    for test in result["tests"]:
        metric_id = test["metric_config"]["metric_id"]
        failed = str(getattr(test["status"], "value", test["status"])) == "FAIL"
        if metric_id in by_id:
            by_id[metric_id]["drifted"] = failed
        elif metric_id == share.get("id"):
            dataset_drift = failed  # the test "share of drifted columns less than drift_share"
    columns = {m["column"]: {k: v for k, v in m.items() if k != "column"} for m in by_id.values()}
    missing = [c for c, m in columns.items() if m["drifted"] is None]
    if missing:
        raise SystemExit(f"Evidently reported no drift verdict for {missing}")
    return {
        "columns": columns,
        "drifted_count": share.get("count"),
        "drifted_share": share.get("share"),
        "drift_share": share.get("drift_share"),
        "dataset_drift": dataset_drift,
    }


def main() -> int:
    """Read the data (untimed), run the report ``--reps`` times, write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--current", type=Path, required=True)
    parser.add_argument(
        "--columns", type=Path, required=True, help="JSON: column -> numerical | categorical"
    )
    parser.add_argument("--drift-share", type=float, default=0.5)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--turns",
        action="store_true",
        help="print 'ready' once the data is read, then run each report only when a line "
        "arrives on stdin and print 'done' after it (the caller alternates with its own runs)",
    )
    args = parser.parse_args()

    import evidently
    import numpy
    import pandas as pd
    import pyarrow
    import scipy

    columns: dict[str, str] = json.loads(args.columns.read_text())
    started = time.perf_counter()
    reference = pd.read_parquet(args.reference, columns=list(columns))
    current = pd.read_parquet(args.current, columns=list(columns))
    read_s = time.perf_counter() - started
    if args.turns:
        print("ready", flush=True)

    samples, cpu_samples, summaries = [], [], []
    for _ in range(args.reps):
        if args.turns and not sys.stdin.readline():
            raise SystemExit("the caller stopped before every turn was run")
        wall, cpu = time.perf_counter(), time.process_time()
        snapshot = run_once(reference, current, columns, args.drift_share)
        samples.append(time.perf_counter() - wall)
        cpu_samples.append(time.process_time() - cpu)
        summaries.append(summarize(snapshot))  # reading the results back: not timed
        del snapshot
        if args.turns:
            print("done", flush=True)
    if any(s != summaries[0] for s in summaries):
        raise SystemExit("Evidently gave different results on the same data")
    result = {
        "evidently_version": evidently.__version__,
        "pandas_version": pd.__version__,
        "numpy_version": numpy.__version__,
        "scipy_version": scipy.__version__,
        "pyarrow_version": pyarrow.__version__,
        "reference_rows": len(reference),
        "current_rows": len(current),
        "dtypes": {str(c): str(t) for c, t in reference.dtypes.items()},
        "read_s": read_s,
        "samples_s": samples,
        "cpu_samples_s": cpu_samples,
        "median_s": statistics.median(samples),
        **summaries[0],
    }
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
