"""Retrieval evaluators: precision@k, recall@k, MRR and NDCG@k with labelled (graded) relevance.

Each query has a ranked list of retrieved ids (best first) and its labelled relevance: a
mapping id -> grade (a number >= 0; the higher, the more relevant) or a collection of relevant
ids (grade 1 each). A document is relevant when its grade is above 0; ids that are not labelled
have grade 0. An id retrieved twice counts once, at its first rank. Every evaluator returns one
score per query as a float64 NumPy array. A query with no relevant document scores 0 on every
evaluator (scikit-learn's ``ndcg_score`` convention), so check that every query is labelled.

=============== ==================================================================== ============
evaluator       definition                                                           range
=============== ==================================================================== ============
precision_at_k  relevant ids in the top k / k (trec_eval's P@k: a list shorter than  0..1
                k is not rewarded for it)
recall_at_k     relevant ids in the top k / all relevant labelled ids                0..1
mrr             1 / rank of the first relevant id in the top k (all ranks when k is  0..1
                None), 0 when none
ndcg_at_k       DCG@k / ideal DCG@k, DCG@k = sum over ranks i <= k of grade_i /      0..1
                log2(i + 1); the ideal ranks every labelled grade in decreasing
                order. Equal to ``sklearn.metrics.ndcg_score`` (linear gain)
=============== ==================================================================== ============

Example::

    from cauce.genai.evals import retrieval
    retrieval.ndcg_at_k([["d3", "d1", "d9"]], [{"d1": 2, "d2": 1}], k=3)
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Scores = npt.NDArray[np.float64]
    Matrix = npt.NDArray[np.float64]

__all__ = ["mrr", "ndcg_at_k", "precision_at_k", "recall_at_k"]

Relevance = Mapping[Hashable, float] | Collection[Hashable]


def _grades(i: int, labels: Relevance) -> dict[Hashable, float]:
    if isinstance(labels, Mapping):
        grades = {}
        for key, grade in labels.items():
            if isinstance(grade, bool) or not isinstance(grade, (int, float)):
                raise InvalidInput(f"relevance[{i}][{key!r}] is {grade!r}, not a number")
            if not math.isfinite(grade) or grade < 0:
                raise InvalidInput(f"relevance[{i}][{key!r}] is {grade}: a grade is >= 0")
            grades[key] = float(grade)
        return grades
    if isinstance(labels, (str, bytes)):
        raise InvalidInput(f"relevance[{i}] must be a mapping id -> grade or a set of ids")
    return dict.fromkeys(labels, 1.0)


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"{name} must be a whole number >= 1, not {k!r}")
    return k


def _gains(
    retrieved: Iterable[Sequence[Hashable]], relevance: Iterable[Relevance], k: int | None
) -> tuple[Matrix, list[dict[Hashable, float]], int]:
    """The grade at each of the first k ranks of each query (0 past its list), the grades, k.

    With k None, k is the longest list's length (at least 1).
    """
    import numpy as np

    lists = []
    for i, ids in enumerate(retrieved):
        if isinstance(ids, (str, bytes)):
            raise InvalidInput(f"retrieved[{i}] must be a list of ids, not a single text")
        lists.append(list(ids))
    grades = [_grades(i, labels) for i, labels in enumerate(relevance)]
    if len(grades) != len(lists):
        raise InvalidInput(
            f"{len(lists)} retrieved lists but {len(grades)} relevance labels: one per query"
        )
    width = _check_k(k) if k is not None else max([1, *(len(ids) for ids in lists)])
    gains = np.zeros((len(lists), width), dtype=np.float64)
    for row, (ids, labels) in enumerate(zip(lists, grades, strict=True)):
        seen: set[Hashable] = set()
        for rank, doc in enumerate(ids[:width]):
            if doc not in seen:
                seen.add(doc)
                gains[row, rank] = labels.get(doc, 0.0)
    return gains, grades, width


def _relevant_counts(grades: list[dict[Hashable, float]]) -> Scores:
    import numpy as np

    return np.array([sum(g > 0 for g in labels.values()) for labels in grades], dtype=np.float64)


def _ratio(numerator: Scores, denominator: Scores) -> Scores:
    import numpy as np

    out = np.zeros_like(numerator)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def precision_at_k(
    retrieved: Iterable[Sequence[Hashable]], relevance: Iterable[Relevance], k: int
) -> Scores:
    """Relevant ids among each query's top ``k`` retrieved, divided by ``k``."""
    gains, _, width = _gains(retrieved, relevance, k)
    hits: Scores = (gains > 0).sum(axis=1).astype("float64")
    return hits / width


def recall_at_k(
    retrieved: Iterable[Sequence[Hashable]], relevance: Iterable[Relevance], k: int
) -> Scores:
    """Relevant ids among each query's top ``k``, divided by its relevant labelled ids."""
    gains, grades, _ = _gains(retrieved, relevance, k)
    hits: Scores = (gains > 0).sum(axis=1).astype("float64")
    return _ratio(hits, _relevant_counts(grades))


def mrr(
    retrieved: Iterable[Sequence[Hashable]],
    relevance: Iterable[Relevance],
    k: int | None = None,
) -> Scores:
    """Reciprocal rank of each query's first relevant id within the top ``k`` (0 if none).

    The mean of the result over the queries is the mean reciprocal rank.
    """
    import numpy as np

    gains, _, _ = _gains(retrieved, relevance, k)
    relevant = gains > 0
    first = relevant.argmax(axis=1)
    out: Scores = np.where(relevant.any(axis=1), 1.0 / (first + 1.0), 0.0)
    return out


def ndcg_at_k(
    retrieved: Iterable[Sequence[Hashable]], relevance: Iterable[Relevance], k: int
) -> Scores:
    """Normalised discounted cumulative gain of each query's top ``k`` (linear gain, log2).

    Equal to ``sklearn.metrics.ndcg_score(y_true, y_score, k=k)`` for one query whose
    ``y_true`` holds the grades of the retrieved ids in rank order followed by the grades of
    the labelled ids not retrieved, and whose ``y_score`` ranks them in that order with the
    ones not retrieved below k (they count in the ideal ranking, never in the DCG).
    """
    import numpy as np

    gains, grades, width = _gains(retrieved, relevance, k)
    discount = 1.0 / (np.log(np.arange(width) + 2) / np.log(2))
    ideal = np.zeros_like(gains)
    for row, labels in enumerate(grades):
        best = sorted(labels.values(), reverse=True)[:width]
        ideal[row, : len(best)] = best
    out: Scores = _ratio(gains @ discount, ideal @ discount)
    return out
