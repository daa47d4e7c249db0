"""Evaluation: offline evaluators (text overlap, retrieval, embeddings) and LLM judges."""

from cauce.genai.evals import judge, metrics, retrieval, semantic
from cauce.genai.evals.runs import Evaluation, Evaluator, compare, evaluator, run

__all__ = [
    "Evaluation",
    "Evaluator",
    "compare",
    "evaluator",
    "judge",
    "metrics",
    "retrieval",
    "run",
    "semantic",
]
