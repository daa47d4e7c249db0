"""The demo story, the whole loop: bronze → quality bar → silver; a bad batch stopped; a cached
training pipeline; tracked candidates; the best one registered as champion and served; a
monitor watching it; traffic that drifts; the alert that retrains, gates and rolls out a
challenger, which is promoted; a broken candidate rolled back; the new champion's lineage back
to the data that set it off.

Each stage prints one or two lines with its numbers, and returns them as data: one entry per
stage, the document ``cauce demo --json`` prints.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from cauce.server import formats

if TYPE_CHECKING:
    import pandas as pd

MODEL = "churn"
EXPERIMENT = "churn"


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Bronze → silver: dates parsed; rows with missing charges, impossible ages or duplicate
    ids dropped."""
    import pandas as pd

    frame = raw.assign(signup_date=pd.to_datetime(raw["signup_date"], errors="coerce"))
    frame = frame.dropna(subset=["total_charges"])
    frame = frame[(frame["age"] >= 18) & (frame["age"] <= 120)]
    frame = frame.drop_duplicates(subset="customer_id", keep=False)
    return frame.reset_index(drop=True)


def corrupted_batch(raw: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """A second export gone wrong: ids in another scheme, a contract code nobody knows and
    negative charges."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = raw.sample(n=min(3000, len(raw)), random_state=seed).reset_index(drop=True)
    batch["customer_id"] = [f"B{i:06d}" for i in range(len(batch))]
    rows = len(batch)
    batch.loc[rng.random(rows) < 0.08, "contract"] = "lifetime"
    batch.loc[rng.random(rows) < 0.05, "monthly_charges"] = -1.0
    return batch


def run(fast: bool = False, console: Console | None = None) -> dict[str, Any]:
    """Run the story in the current workspace, printing it on ``console``; its results: the
    workspace, the seconds it took and ``stages``, one entry per stage with the numbers printed.
    """
    from importlib.resources import files

    import cauce
    from cauce.demo import serving
    from cauce.demo.generate import load_bundled
    from cauce.demo.pipeline import CANDIDATES, candidate_params, training
    from cauce.errors import ValidationFailed
    from cauce.workspace import current

    out = console or Console(highlight=False)
    started = time.perf_counter()
    ws = current()
    suite = str(files("cauce.demo") / "data" / "customers-silver.yaml")
    out.print(f"[bold]Cauce demo[/] in workspace {ws.settings.root}")

    # 1. Data: bronze, through the quality bar into silver.
    raw = load_bundled()
    if fast:
        raw = raw.head(4000)
    bronze = cauce.data.register("customers", raw, layer="bronze")
    promoted = cauce.data.promote(
        bronze, suite, to_layer="silver", name="customers_silver", transform=clean
    )
    silver, checks = promoted.version, promoted.validation
    warnings = [c.name for c in checks.warnings]
    out.print(
        f"1. data      customers v{bronze.version} (bronze, {bronze.row_count:,} rows) → "
        f"customers_silver v{silver.version} (silver, {silver.row_count:,} rows): "
        f"{len(checks.checks) - len(warnings)}/{len(checks.checks)} checks passed"
        + (f", warnings: {', '.join(warnings)}" if warnings else "")
    )
    stages: list[dict[str, Any]] = [
        {
            "stage": "data",
            "bronze": _version(bronze),
            "silver": _version(silver),
            "checks": len(checks.checks),
            "checks_passed": len(checks.checks) - len(warnings),
            "warnings": warnings,
        }
    ]

    # 2. A corrupted batch meets the quality bar.
    bad = cauce.data.register("customers", corrupted_batch(raw), layer="bronze")
    stopped: list[str] = []
    try:
        cauce.data.promote(bad, suite, to_layer="silver", name="customers_silver", transform=clean)
    except ValidationFailed as exc:
        stopped = [c.name for c in exc.result.failures]
        out.print(
            f"2. quality   batch customers v{bad.version} ({bad.row_count:,} rows) stopped by "
            f"the quality bar; failing checks: {', '.join(stopped)}"
        )
        stages.append(
            {"stage": "quality", "batch": _version(bad), "stopped": True, "failed_checks": stopped}
        )
    else:  # pragma: no cover - the batch is built to fail
        raise RuntimeError("the corrupted batch passed the quality bar")

    # 3. The cached training pipeline, then tracked runs of its candidates.
    t0 = time.perf_counter()
    first = training.run(silver=silver.ref, fast=fast)
    first_seconds = time.perf_counter() - t0
    if not first.succeeded:
        raise RuntimeError(f"the training pipeline failed: {first.error}")
    outcome = first.result()
    test_rows = outcome["test"]
    results = []
    for name in CANDIDATES:
        model, metrics = (
            outcome["candidates"][name]["model"],
            outcome["candidates"][name]["metrics"],
        )
        with cauce.start_run(experiment=EXPERIMENT, run_name=name) as tracked:
            cauce.log_input(silver, context="training")
            cauce.log_params({"model": name, **candidate_params(name, fast)})
            cauce.set_tags({"pipeline_run": first.id})
            cauce.log_metrics(metrics)
            cauce.log_model(model, "model", input_example=test_rows.head(5).drop(columns="churned"))
        results.append({"run_id": tracked.run_id, "candidate": name, **metrics})

    t0 = time.perf_counter()
    again = training.run(silver=silver.ref, fast=fast)
    again_seconds = time.perf_counter() - t0
    hits = sum(1 for s in again.steps.values() if s.cache_hit)
    out.print(
        f"3. pipeline  training: {len(first.steps)} steps in {formats.took(first_seconds * 1000)}; "
        f"re-run unchanged: {hits}/{len(again.steps)} steps from cache in "
        f"{formats.took(again_seconds * 1000)}"
    )
    stages.append(
        {
            "stage": "pipeline",
            "pipeline_run": first.id,
            "steps": len(first.steps),
            "seconds": first_seconds,
            "rerun": {
                "pipeline_run": again.id,
                "steps": len(again.steps),
                "cache_hits": hits,
                "seconds": again_seconds,
            },
        }
    )

    best = max(results, key=lambda r: r["roc_auc"])
    version = cauce.models.register(
        f"runs:/{best['run_id']}/model",
        MODEL,
        description="Predicts which customers will churn in the next month.",
    )
    cauce.models.set_alias(MODEL, "champion", version.version)

    table = Table(title="4. training  three candidates, held-out test set", title_justify="left")
    for column in ("Candidate", "ROC AUC", "Accuracy", "F1", "Run"):
        table.add_column(column)
    for r in sorted(results, key=lambda r: -r["roc_auc"]):
        table.add_row(
            r["candidate"] + (" ★" if r is best else ""),
            f"{r['roc_auc']:.4f}",
            f"{r['accuracy']:.4f}",
            f"{r['f1']:.4f}",
            r["run_id"][:8],
        )
    out.print(table)
    out.print(
        f"5. registry  {best['candidate']} registered as {MODEL} v{version.version}, "
        f"alias champion → models:/{MODEL}@champion"
    )
    out.print(
        f"   see it:   cauce models card models:/{MODEL}@champion  ·  "
        f"cauce lineage models:/{MODEL}/{version.version}  ·  cauce audit"
    )
    ranked = sorted(results, key=lambda r: -r["roc_auc"])
    stages.append(
        {
            "stage": "training",
            "experiment": EXPERIMENT,
            "candidates": ranked,
            "best": best["candidate"],
        }
    )
    stages.append(
        {
            "stage": "registry",
            "model": MODEL,
            "version": version.version,
            "run_id": best["run_id"],
            "aliases": {"champion": version.version},
        }
    )

    # 6-11. Serving and the closed loop: the champion served and monitored; traffic drifts; the
    # alert retrains, gates and rolls out a challenger, promoted; a broken candidate rolled back.
    stages += serving.run(ws, test_rows, silver, best["candidate"], out, fast=fast)
    stages.append(_account(ws, out))
    elapsed = time.perf_counter() - started
    out.print(f"[dim]done in {formats.took(elapsed * 1000)}[/]")
    return {"workspace": str(ws.settings.root), "fast": fast, "seconds": elapsed, "stages": stages}


def _version(version: Any) -> dict[str, Any]:
    """A dataset version in the results: its ref and rows."""
    return {"ref": version.ref, "rows": version.row_count}


def _account(ws: Any, out: Console) -> dict[str, Any]:
    """The new champion's lineage back to the window that raised the alert; the report."""
    from cauce.demo.serving import MONITOR
    from cauce.lineage.graph import walk
    from cauce.monitoring.report import write_report
    from cauce.registry.models import resolve

    champion = resolve(f"models:/{MODEL}@champion", workspace=ws)
    graph = walk(ws, "model_version", champion.id, "upstream")
    chain = _chain(graph, ("model_version", champion.id))
    out.print(f"12. account  lineage of {MODEL} v{champion.version}, upstream:")
    for depth, _, label, relation in chain:
        out.print(f"   {'  ' * depth}← {label}  [dim]({relation})[/]")
    report = write_report(
        MONITOR, ws.settings.state_dir / "reports" / f"{MONITOR}.html", workspace=ws
    )
    out.print(
        f"   see it:   {report}  ·  cauce alerts list  ·  cauce audit  ·  "
        f"cauce lineage models:/{MODEL}/{champion.version}"
    )
    return {
        "stage": "account",
        "model": MODEL,
        "version": champion.version,
        "lineage": [
            {"depth": depth, "kind": kind, "label": label, "relation": relation}
            for depth, kind, label, relation in chain
        ],
        "report": str(report),
    }


def _chain(graph: Any, start: tuple[str, str]) -> list[tuple[int, str, str, str]]:
    """The upstream tree from ``start`` as (depth, kind, label, relation), each node once."""
    parents: dict[tuple[str, str], list[tuple[Any, str]]] = {}
    for edge in graph.edges:
        parents.setdefault((edge.dst.kind, edge.dst.id), []).append((edge.src, edge.relation))
    out: list[tuple[int, str, str, str]] = []
    seen = {start}

    def visit(key: tuple[str, str], depth: int) -> None:
        for node, relation in sorted(parents.get(key, []), key=lambda p: p[0].label):
            if (node.kind, node.id) in seen:
                continue
            seen.add((node.kind, node.id))
            out.append((depth, node.kind, node.label, relation))
            visit((node.kind, node.id), depth + 1)

    visit(start, 0)
    return out
