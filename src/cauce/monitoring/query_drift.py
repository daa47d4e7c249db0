"""Query drift: have the questions users ask moved away from the reference's?

Both sides' queries are embedded with the offline all-MiniLM-L6-v2 (the indexes' embedder,
through the store's embedding cache, so a reference is embedded once), at most ``max_rows`` a
side (a seeded sample beyond). Two methods, chosen by ``method``:

- ``projection``: the reference's embeddings are centred and projected on their first
  ``components`` principal directions (an SVD of the reference alone; each direction's sign
  fixed so that its largest loading is positive, so a run reproduces); the window's embeddings
  are projected on the same directions, and each component is then a numerical feature judged
  by the drift metrics of data drift (:func:`cauce.monitoring.drift.data_drift`: the reference
  binning, the metric, its threshold, and the drifted share against ``drift_share``). Values:
  ``pc1`` … ``pcK`` and ``*`` ``drifted_share``.
- ``classifier``: a logistic regression learns to tell the window's queries from the
  reference's (equal numbers of each, a seeded sample of the larger side), scored out of fold
  (5-fold stratified cross-validation); its ROC AUC (:func:`cauce.stats.roc_auc`) is about 0.5
  when the two are alike and near 1 when they are told apart. The value ``*`` ``domain_auc``
  breaches above ``max_auc``; its details list the window's queries the classifier found least
  like the reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cauce.monitoring import drift
from cauce.monitoring.drift import BREACHED, NOT_COMPUTED, PASSED
from cauce.monitoring.specs import QueryDrift
from cauce.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np

__all__ = ["FOLDS", "MIN_QUERIES", "compute", "domain_auc", "project"]

SIGNAL = "query_drift"
FOLDS = 5
MIN_QUERIES = 10  # per side, for the classifier (two per fold)
SHOWN = 5  # queries listed as the most unlike the reference
SHOWN_CHARS = 200


def compute(
    ws: Workspace, body: QueryDrift, reference: list[str], current: list[str], *, bins: int
) -> list[dict[str, Any]]:
    """The values of one query-drift signal: the reference's queries against the window's."""
    ref = _subsample(reference, body.max_rows, body.seed)
    cur = _subsample(current, body.max_rows, body.seed + 1)
    methods = ("projection", "classifier") if body.method == "both" else (body.method,)
    problem = None
    if not ref:
        problem = "the reference has no queries"
    elif not cur:
        problem = "the window has no queries"
    if problem is not None:
        return [_not_computed(metric, problem) for metric in _metrics(methods)]
    ref_vectors, cur_vectors = _embed(ws, ref), _embed(ws, cur)
    out: list[dict[str, Any]] = []
    if "projection" in methods:
        out += _projection(body, ref_vectors, cur_vectors, bins, len(reference), len(current))
    if "classifier" in methods:
        out.append(_classifier(body, ref_vectors, cur_vectors, cur))
    return out


def _metrics(methods: tuple[str, ...]) -> list[str]:
    return [
        m
        for m, used in (("drifted_share", "projection"), ("domain_auc", "classifier"))
        if used in methods
    ]


def _not_computed(metric: str, reason: str, threshold: float | None = None) -> dict[str, Any]:
    return {
        "signal": SIGNAL,
        "feature": "*",
        "metric": metric,
        "value": None,
        "threshold": threshold,
        "outcome": NOT_COMPUTED,
        "details": {"reason": reason},
    }


def _subsample(texts: list[str], limit: int, seed: int) -> list[str]:
    if len(texts) <= limit:
        return texts
    import numpy as np

    keep = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
    return [texts[i] for i in keep]


def _embed(ws: Workspace, texts: list[str]) -> np.ndarray:
    from cauce.genai.indexes.embed import MiniLMEmbedder, embed_texts
    from cauce.genai.indexes.registry import StoreEmbeddingCache

    return embed_texts(texts, MiniLMEmbedder(), StoreEmbeddingCache(ws)).vectors


def project(
    reference: np.ndarray, current: np.ndarray, components: int
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Both sides on the reference's first principal directions, and the share of the
    reference's variance each direction explains."""
    import numpy as np

    ref = reference.astype(np.float64)
    centre = ref.mean(axis=0)
    _, singular, directions = np.linalg.svd(ref - centre, full_matrices=False)
    k = min(components, len(singular))
    basis = directions[:k]
    flip = np.sign(basis[np.arange(k), np.abs(basis).argmax(axis=1)])
    basis = basis * np.where(flip == 0, 1.0, flip)[:, None]
    variance = singular**2
    explained = (variance[:k] / variance.sum()).tolist() if variance.sum() > 0 else [0.0] * k
    return (ref - centre) @ basis.T, (current.astype(np.float64) - centre) @ basis.T, explained


def _projection(
    body: QueryDrift,
    ref_vectors: np.ndarray,
    cur_vectors: np.ndarray,
    bins: int,
    ref_total: int,
    cur_total: int,
) -> list[dict[str, Any]]:
    import pandas as pd

    from cauce.monitoring.profiles import build_profile

    if len(ref_vectors) < 2:
        return [_not_computed("drifted_share", "the reference has fewer than 2 queries")]
    ref_points, cur_points, explained = project(ref_vectors, cur_vectors, body.components)
    names = [f"pc{i + 1}" for i in range(ref_points.shape[1])]
    kinds = dict.fromkeys(names, "numerical")
    profile = build_profile(pd.DataFrame(ref_points, columns=names), bins=bins, columns=kinds)
    report = drift.data_drift(
        profile,
        pd.DataFrame(cur_points, columns=names),
        numerical=body.metric,
        threshold=body.threshold,
        drift_share=body.drift_share,
    )
    out = []
    for feature, share in zip(report.features, explained, strict=True):
        details = {**feature.details, "explained_variance": share}
        out.append(
            {
                "signal": SIGNAL,
                "feature": feature.name,
                "metric": feature.metric,
                "value": drift.finite(feature.value),
                "threshold": feature.threshold,
                "outcome": feature.outcome,
                "details": details,
            }
        )
    verdict = report.dataset_drift
    out.append(
        {
            "signal": SIGNAL,
            "feature": "*",
            "metric": "drifted_share",
            "value": report.drifted_share,
            "threshold": body.drift_share,
            "outcome": NOT_COMPUTED if verdict is None else (BREACHED if verdict else PASSED),
            "details": {
                "drifted": report.drifted,
                "reference_queries": len(ref_vectors),
                "current_queries": len(cur_vectors),
                "reference_total": ref_total,
                "current_total": cur_total,
                "explained_variance": sum(explained),
            }
            if report.drifted_share is not None
            else {"reason": "no component could be computed"},
        }
    )
    return out


def domain_auc(
    reference: np.ndarray, current: np.ndarray, seed: int
) -> tuple[float | None, np.ndarray, np.ndarray]:
    """Out-of-fold ROC AUC of a classifier telling ``current`` from ``reference`` (equal
    numbers of each), the positions in ``current`` it used, and their out-of-fold scores."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from cauce import stats

    rng = np.random.default_rng(seed)
    n = min(len(reference), len(current))
    ref_rows = np.sort(rng.choice(len(reference), size=n, replace=False))
    cur_rows = np.sort(rng.choice(len(current), size=n, replace=False))
    x = np.vstack([reference[ref_rows], current[cur_rows]]).astype(np.float64)
    y = np.concatenate([np.zeros(n, dtype=int), np.ones(n, dtype=int)])
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=1000)
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return stats.roc_auc(y, scores, positive=1), cur_rows, scores[n:]


def _classifier(
    body: QueryDrift, ref_vectors: np.ndarray, cur_vectors: np.ndarray, texts: list[str]
) -> dict[str, Any]:
    import numpy as np

    n = min(len(ref_vectors), len(cur_vectors))
    if n < MIN_QUERIES:
        reason = f"{n} queries on the smaller side, fewer than the classifier's {MIN_QUERIES}"
        return _not_computed("domain_auc", reason, body.max_auc)
    auc, rows, scores = domain_auc(ref_vectors, cur_vectors, body.seed)
    if auc is None:
        return _not_computed("domain_auc", "the ROC AUC is undefined", body.max_auc)
    unlike = np.argsort(-scores, kind="stable")[:SHOWN]
    return {
        "signal": SIGNAL,
        "feature": "*",
        "metric": "domain_auc",
        "value": drift.finite(float(auc)),
        "threshold": body.max_auc,
        "outcome": BREACHED if auc > body.max_auc else PASSED,
        "details": {
            "queries_per_side": int(n),
            "folds": FOLDS,
            "most_unlike_reference": [
                {"query": texts[rows[i]][:SHOWN_CHARS], "score": float(scores[i])} for i in unlike
            ],
        },
    }
