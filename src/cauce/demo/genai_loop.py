"""The pipeline the GenAI demo's monitor triggers when the questions drift away from what the
index knows: the index refreshed from the changed documents as a staged version → the flow
evaluated on the staged and the current version, on the same questions → a gate (the staged
version must answer at least as well) → a canary deployment that searches the staged version,
rolled out and judged on GenAI signals; its promotion makes the staged version current.

A staged version that fails the gate stops the pipeline there with the scores in its error: it
never reaches traffic.
"""

from __future__ import annotations

from typing import Any

import cauce
from cauce.demo.genai import SLOTS

EVALUATORS = ["f1", "groundedness_proxy"]
# The local LLM answers a request or two a second: intervals long enough to hold some.
CANARY_STEPS = [{"weight": 50, "pause": "20s"}, {"weight": 100}]
ANALYSIS = {
    "interval": "10s",
    "failure_limit": 2,
    "min_requests": 1,
    "inconclusive_limit": 6,
    "metrics": [
        {"name": "error_rate", "max": 0.2},
        {"name": "block_rate", "max": 0.5},
        {"name": "tokens_per_request", "max": 2000},
    ],
}


@cauce.step
def stage_index(index: str, alert_id: str = "") -> int:
    """Build the index's next version from its source, without making it current."""
    from cauce.errors import InvalidInput

    refreshed = cauce.indexes.refresh(index, promote=False, actor="genai-refresh")
    if not refreshed.created:
        raise InvalidInput(f"index {index}: the documents did not change; nothing to roll out")
    return int(refreshed.version.version)


@cauce.step
def evaluate(staged: int, index: str, flow: str, questions: str) -> dict[str, Any]:
    """The flow's scores on the questions, searching the staged and the current version."""
    current = cauce.indexes.get_index(index).current_version
    scores = {}
    for version in (staged, current):
        evaluation = cauce.evals.run(
            questions,
            EVALUATORS,
            flow=flow,
            indexes={index: int(version or staged)},
            concurrency=SLOTS,
            name=f"{flow} on {index}@{version}",
        )
        scores[str(version)] = {k: evaluation.metrics.get(k) for k in EVALUATORS}
    return {"staged": staged, "current": current, "scores": scores}


@cauce.step
def gate(evaluated: dict[str, Any], margin: float = 0.0) -> dict[str, Any]:
    """Pass when the staged version scores at least as well as the current one on every
    evaluator (within ``margin``)."""
    from cauce.errors import QualityGateFailed

    new = evaluated["scores"][str(evaluated["staged"])]
    old = evaluated["scores"][str(evaluated["current"])]
    worse = [
        f"{name} {new[name]:.3f} < {old[name]:.3f}"
        for name in EVALUATORS
        if new[name] is not None and old[name] is not None and new[name] < old[name] - margin
    ]
    if worse:
        raise QualityGateFailed(
            f"index version {evaluated['staged']} answers worse than {evaluated['current']}: "
            + "; ".join(worse)
        )
    return evaluated


@cauce.step
def canary(passed: dict[str, Any], index: str, flow: str, endpoint: str) -> dict[str, Any]:
    """Deploy the flow searching the staged version as ``green`` and roll it out."""
    from cauce.serving.endpoints import get_endpoint

    stable = get_endpoint(endpoint).deployment("blue").spec
    cauce.apply(
        [
            {
                "kind": "Deployment",
                "endpoint": endpoint,
                "name": "green",
                "flow": flow,
                "indexes": {index: passed["staged"]},
                **({"safety": stable["safety"]} if stable.get("safety") else {}),
            },
            {
                "kind": "Rollout",
                "endpoint": endpoint,
                "candidate": "green",
                "stable": "blue",
                "alias": None,
                "steps": CANARY_STEPS,
                "analysis": ANALYSIS,
            },
        ]
    )
    return {"deployment": "green", "index_version": passed["staged"]}


@cauce.pipeline
def refresh_and_canary(
    index: str,
    flow: str,
    endpoint: str,
    questions: str,
    margin: float = 0.0,
    alert_id: str = "",
) -> Any:
    """Changed documents → staged index version → evaluated → gate → canary."""
    staged = stage_index(index, alert_id)
    return canary(gate(evaluate(staged, index, flow, questions), margin), index, flow, endpoint)
