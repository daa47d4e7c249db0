"""Prompt-injection detection on the held-out split of the corpus Cauce ships.

The corpus (``src/cauce/genai/safety/data/injection.jsonl``, see its README) is split by
template family: the classifier is trained on the ``train`` split only, and nothing of a
held-out family (its templates, its near-duplicates) is in it. Printed: precision and recall of
the whole detector (rules, then the classifier where no rule matched), of each layer alone, and
of the whole detector per language. Exit 1 below the target: recall >= 0.90 at precision >= 0.95.

``--calibrate`` recomputes the classifier's cut (``injection.CUT``) by five-fold cross-validation
grouped by family over the training split: the lowest probability whose out-of-fold precision
reaches 0.98.

Example::

    python benchmarks/injection_eval.py --json .bench/injection.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from cauce.genai.safety import injection
from cauce.genai.safety.normalize import normalize


def scores(predicted: list[bool], labels: list[int]) -> dict[str, Any]:
    tp = sum(p and y == 1 for p, y in zip(predicted, labels, strict=True))
    fp = sum(p and y == 0 for p, y in zip(predicted, labels, strict=True))
    fn = sum((not p) and y == 1 for p, y in zip(predicted, labels, strict=True))
    return {
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n": len(labels),
    }


def calibrate(rows: list[dict[str, Any]]) -> float:
    import numpy as np
    from sklearn.model_selection import GroupKFold

    texts = [normalize(r["text"]).full for r in rows]
    labels = np.array([r["label"] for r in rows])
    groups = [r["family"] for r in rows]
    oof = np.zeros(len(rows))
    for train, test in GroupKFold(5).split(texts, labels, groups):
        vectorizer, model = injection.fit([texts[i] for i in train], list(labels[train]))
        oof[test] = model.predict_proba(vectorizer.transform([texts[i] for i in test]))[:, 1]
    for cut in [round(0.5 + 0.05 * i, 2) for i in range(10)]:
        result = scores(list(oof >= cut), list(labels))
        print(f"cut {cut:.2f}: out-of-fold precision {result['precision']:.3f} "
              f"recall {result['recall']:.3f}")  # fmt: skip
        if result["precision"] >= 0.98:
            return cut
    return 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="Held-out rows to score (0: all).")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    corpus = injection.load_corpus()
    if args.calibrate:
        cut = calibrate([r for r in corpus if r["split"] == "train"])
        print(f"chosen cut {cut} (injection.CUT is {injection.CUT})")
    started = time.perf_counter()
    injection.warm()
    trained = time.perf_counter() - started
    rows = [r for r in corpus if r["split"] == "heldout"]
    if args.limit:
        rows = rows[:: max(1, len(rows) // args.limit)][: args.limit]
    labels = [r["label"] for r in rows]
    started = time.perf_counter()
    seen = [normalize(r["text"]) for r in rows]
    rules = [bool(injection.rule_matches(s)) for s in seen]
    classifier = [injection.classifier_score(s) >= 0.5 for s in seen]
    whole = [injection.detect_injection(s).flagged() for s in seen]
    per_text_ms = (time.perf_counter() - started) / len(rows) * 1000 / 3
    result: dict[str, Any] = {
        "train_rows": sum(r["split"] == "train" for r in corpus),
        "heldout_rows": len(rows),
        "train_s": trained,
        "ms_per_text": per_text_ms,
        "whole": scores(whole, labels),
        "rules": scores(rules, labels),
        "classifier": scores(classifier, labels),
        "languages": {},
    }
    for lang in ("en", "es", "fr", "de", "pt"):
        idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
        result["languages"][lang] = scores([whole[i] for i in idx], [labels[i] for i in idx])
    print(f"{result['train_rows']} training rows, {len(rows)} held-out rows; "
          f"classifier trained in {trained:.2f} s; {per_text_ms:.2f} ms per text")  # fmt: skip
    print("layer       | precision | recall | false pos | missed | rows")
    lines = [("whole", result["whole"]), ("rules", result["rules"])]
    lines += [("classifier", result["classifier"])]
    lines += [(f"  {k}", v) for k, v in result["languages"].items()]
    for name, s in lines:
        print(f"{name:<11} | {s['precision']:9.3f} | {s['recall']:6.3f} | {s['fp']:9d} | "
              f"{s['fn']:6d} | {s['n']}")  # fmt: skip
    # Real benign text nobody wrote for the corpus: the project's own docs, by paragraph (not
    # docs/safety.md, which quotes attacks on purpose).
    root = Path(__file__).resolve().parents[1]
    pages = [p for p in sorted(root.glob("docs/*.md")) if p.name != "safety.md"]
    paragraphs = [
        p
        for page in pages + sorted(root.glob("src/cauce/demo/data/genai/docs/*"))
        for p in page.read_text(encoding="utf-8").split("\n\n")
        if p.strip()
    ]
    if paragraphs:
        found = [injection.detect_injection(p) for p in paragraphs]
        result["docs"] = {
            "paragraphs": len(paragraphs),
            "flagged_at_0.5": sum(r.score >= 0.5 for r in found),
            "flagged_at_0.7": sum(r.score >= 0.7 for r in found),
        }
        print(f"Cauce's own docs, {len(paragraphs)} paragraphs (benign): flagged "
              f"{result['docs']['flagged_at_0.5']} at 0.5, "
              f"{result['docs']['flagged_at_0.7']} at 0.7")  # fmt: skip
    whole_ok = result["whole"]["recall"] >= 0.90 and result["whole"]["precision"] >= 0.95
    result["target_met"] = whole_ok
    print(f"target recall >= 0.90 at precision >= 0.95: {'PASS' if whole_ok else 'FAIL'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if whole_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
