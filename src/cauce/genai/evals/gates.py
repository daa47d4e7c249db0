"""Gates for prompt versions: the same ``kind: Gate`` policies as for model versions, measured
on evaluation runs.

A prompt version's metric is read from the newest finished evaluation run (experiment
``evals``) that evaluated it (tagged ``cauce.prompt_version.NODE`` with its id, as runs over a
flow are) on the policy's data: ``metric`` rules bound it, ``regression`` rules compare it with
the version a label (``production``) points at, evaluated on the same dataset version. Rules
about model cards and data checks do not apply to prompts and are refused.

Example::

    kind: Gate
    name: answer-release
    data: qa-golden
    rules:
      - metric: {name: f1, min: 0.6}
      - metric: {name: relevance.pass_rate, min: 0.8}
      - regression: {metric: f1, max_drop: 0.02, against: production}
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from cauce.errors import InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.registry.gates import GatePolicy, GateResult, RuleResult, verdict
from cauce.specs import read_mapping, validation_error
from cauce.workspace import Workspace, current

__all__ = ["check", "check_policy", "load_policy"]


def load_policy(policy: GatePolicy | dict[str, Any] | str | Path) -> GatePolicy:
    """A gate policy for prompts: metric and regression rules, and the data they read."""
    if isinstance(policy, GatePolicy):
        parsed = policy
        where = "gate policy"
    else:
        data, where = read_mapping(policy, "gate policy")
        if not isinstance(data, dict):
            raise InvalidInput(f"{where} must be a mapping with kind: Gate, name and rules")
        try:
            parsed = GatePolicy.model_validate(data)
        except ValidationError as exc:
            bad = validation_error("Gate", exc, GatePolicy)
            raise InvalidInput(f"{where}: {bad.message}", details=bad.details) from None
    for index, rule in enumerate(parsed.rules):
        if rule.kind not in ("metric", "regression"):
            raise InvalidInput(
                f"{where}: rules.{index}: a {rule.kind} rule does not apply to a prompt version "
                "(metric and regression rules do)"
            )
        spec = rule.metric or rule.regression
        assert spec is not None
        if (spec.data or parsed.data) is None:
            raise InvalidInput(
                f"{where}: rules.{index}: a prompt version is measured on an evaluation of a "
                "dataset: set data on the rule or the policy"
            )
    return parsed


def check(
    prompt: str,
    policy: GatePolicy | dict[str, Any] | str | Path,
    *,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> GateResult:
    """Measure every rule on a prompt version's evaluations; audit the verdict (``gate.check``
    on the prompt version)."""
    return check_policy(prompt, load_policy(policy), actor=actor, workspace=workspace)


@operation("POST /prompt-gates/checks")
def check_policy(
    prompt: str,
    policy: GatePolicy,
    *,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> GateResult:
    """:func:`check` with a policy already loaded: measure its rules on the stored evaluation
    runs, audit the verdict."""
    from cauce.genai.prompts import load

    ws = workspace or current()
    rules = load_policy(policy)
    version = load(prompt, workspace=ws)
    result = verdict(
        rules, version.uri, version.id, lambda name, rule: _measure(ws, rules, name, rule, version)
    )
    with ws.store.write() as conn:
        audit.record(
            conn,
            actor or ws.user,
            "gate.check",
            "prompt_version",
            version.id,
            after={
                "policy": rules.name,
                "prompt": version.uri,
                "requested": prompt,
                "passed": result.passed,
                "reason": result.reason,
                "failed": [r.name for r in result.failures],
            },
        )
    return result


def _measure(ws: Workspace, policy: GatePolicy, name: str, rule: Any, version: Any) -> RuleResult:
    from cauce.data.assets import get_version
    from cauce.genai.prompts import load

    if rule.metric is not None:
        spec = rule.metric
        data = get_version(str(spec.data or policy.data), workspace=ws)
        value, run_id = _evaluated(ws, version.id, data.ref, spec.name)
        low, high = spec.min, spec.max
        passed = (low is None or value >= low) and (high is None or value <= high)
        bounds = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        verdict = "within" if passed else "outside"
        return RuleResult(
            name,
            "metric",
            passed,
            value,
            bounds,
            f"{spec.name} = {value:.4g} on {data.ref} is {verdict} the bounds (run {run_id})",
            {"run_id": run_id, "data": data.ref},
        )
    spec = rule.regression
    data = get_version(str(spec.data or policy.data), workspace=ws)
    against = load(f"prompts:/{version.name}@{spec.against}", workspace=ws)
    value, run_id = _evaluated(ws, version.id, data.ref, spec.metric)
    baseline, baseline_run = _evaluated(ws, against.id, data.ref, spec.metric)
    from cauce.registry.evaluations import lower_is_better

    higher = (
        not lower_is_better(spec.metric) if spec.higher_is_better is None else spec.higher_is_better
    )
    drop = (baseline - value) if higher else (value - baseline)
    passed = drop <= spec.max_drop
    return RuleResult(
        name,
        "regression",
        passed,
        {"candidate": value, "against": baseline},
        {"max_drop": spec.max_drop},
        f"{spec.metric} {value:.4g} vs {baseline:.4g} for {against.uri} on {data.ref}: "
        f"{'dropped' if drop > 0 else 'gained'} {abs(drop):.4g}"
        + ("" if passed else f", more than {spec.max_drop:g}"),
        {"run_id": run_id, "against_run_id": baseline_run, "against": against.uri},
    )


def _evaluated(ws: Workspace, version_id: str, data: str, metric: str) -> tuple[float, str]:
    """The metric of the newest finished evaluation run of a prompt version on ``data``."""
    from cauce.store.schema import experiments, params, run_tags, runs
    from cauce.tracking.runs import get_run

    with ws.store.read() as conn:
        found = conn.execute(
            select(runs.c.id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(run_tags, run_tags.c.run_id == runs.c.id)
            .join(params, params.c.run_id == runs.c.id)
            .where(
                experiments.c.name == "evals",
                runs.c.status == "FINISHED",
                run_tags.c.key.startswith("cauce.prompt_version."),
                run_tags.c.value == version_id,
                params.c.key == "data",
                params.c.value == data,
            )
            .order_by(runs.c.start_time.desc())
            .limit(1)
        ).scalar()
    if found is None:
        raise NotFound(
            f"no finished evaluation run of this prompt version on {data}",
            hint="cauce evals run --flow FLOW --data DATA evaluates the prompts a flow uses",
        )
    value = get_run(found, workspace=ws).data.metrics.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise NotFound(f"evaluation run {found} has no metric {metric!r}")
    return float(value), str(found)
