"""Gates: YAML policies a model version must pass before it moves on (to challenger, to serving).

A policy (see docs/gates.md for every field)::

    kind: Gate
    name: churn-promotion
    data: customers_holdout          # newest version at check time; or customers_holdout@3
    label: churned
    rules:
      - metric: {name: roc_auc, min: 0.80}
      - regression: {metric: roc_auc, max_drop: 0.01, against: champion}
      - checks_passed: {}
      - card: {required: [description, signature, intended_use]}

:func:`check` measures every rule and returns a :class:`GateResult`; it passes only when every
rule passes. Each check writes one ``gate.check`` audit event on the model version, with every
rule's verdict and the reason. A rule that cannot be measured (the data is missing, the model
cannot score it) fails with the reason instead of stopping the other rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from cauce.errors import CauceError, InvalidInput, NotFound
from cauce.lineage import audit
from cauce.operations import operation
from cauce.specs import read_mapping, validation_error
from cauce.stats import Average, Label, Positive, RuleError, check_rule
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    from cauce.data.assets import DatasetVersion
    from cauce.registry.evaluations import Evaluation
    from cauce.registry.models import ModelVersion
    from cauce.tracking.entities import Run

__all__ = [
    "GatePolicy",
    "GateResult",
    "RuleResult",
    "check",
    "check_policy",
    "load_policy",
    "verdict",
]

RULE_KINDS = ("metric", "regression", "checks_passed", "card")
# Card fields read from the version's metadata; any other name is a tag (version, then model).
CARD_FIELDS = (
    "description",
    "signature",
    "input_example",
    "requirements",
    "source_run",
    "training_data",
    "metrics",
    "params",
    "code_version",
)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricRule(_Spec):
    """A metric of the version between ``min`` and ``max``."""

    name: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    source: Literal["auto", "evaluation", "run"] = "auto"
    data: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)
    positive: Positive = None
    average: Average | None = None

    @model_validator(mode="after")
    def _bounds(self) -> MetricRule:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class RegressionRule(_Spec):
    """The version is at most ``max_drop`` worse than the version ``against`` names."""

    metric: str = Field(min_length=1)
    max_drop: float = Field(ge=0)
    against: str = Field(default="champion", min_length=1)
    higher_is_better: bool | None = None
    data: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)
    positive: Positive = None
    average: Average | None = None


class ChecksPassedRule(_Spec):
    """Every dataset version the version's run read passed its quality checks."""

    suite: str | None = Field(default=None, min_length=1)
    contexts: list[str] | None = Field(default=None, min_length=1)


class CardRule(_Spec):
    """Model-card fields that must be present and non-empty."""

    required: list[str] = Field(min_length=1)


class Rule(_Spec):
    """One entry of ``rules:``: exactly one rule kind, and an optional display ``name``."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    metric: MetricRule | None = None
    regression: RegressionRule | None = None
    checks_passed: ChecksPassedRule | None = None
    card: CardRule | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_checks_passed(cls, data: Any) -> Any:
        # ``- checks_passed:`` with nothing after it reads as None in YAML: the same as {}.
        if isinstance(data, dict) and "checks_passed" in data and data["checks_passed"] is None:
            return {**data, "checks_passed": {}}
        return data

    @model_serializer(mode="wrap")
    def _given_kinds_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An absent kind is left out, not written as null: ``checks_passed: null`` reads back
        # as the bare ``- checks_passed:`` of YAML (see above), so a policy must travel without.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if not (k in RULE_KINDS and v is None)}

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        given = [k for k in RULE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"each rule holds exactly one of {', '.join(RULE_KINDS)}; this one has "
                + (", ".join(given) if given else "none")
            )
        return self

    @property
    def kind(self) -> str:
        """``metric``, ``regression``, ``checks_passed`` or ``card``."""
        return next(k for k in RULE_KINDS if getattr(self, k) is not None)

    def default_name(self) -> str:
        """``metric roc_auc``, ``regression roc_auc vs champion``, ``checks_passed``, ``card``."""
        if self.metric is not None:
            return f"metric {self.metric.name}"
        if self.regression is not None:
            return f"regression {self.regression.metric} vs {self.regression.against}"
        if self.checks_passed is not None and self.checks_passed.suite:
            return f"checks_passed {self.checks_passed.suite}"
        return self.kind


class GatePolicy(_Spec):
    """A named list of rules, with the dataset and label that metric rules evaluate on."""

    kind: Literal["Gate"]
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    data: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1)
    positive: Positive = None  # of classification labels; default: cauce.stats' rule
    average: Average | None = None
    rules: list[Rule] = Field(min_length=1)

    def rule_names(self) -> list[str]:
        """Each rule's name: its own, or its default numbered when it repeats."""
        names: list[str] = []
        for rule in self.rules:
            name = base = rule.name or rule.default_name()
            n = 1
            while name in names:
                n += 1
                name = f"{base} #{n}"
            names.append(name)
        return names


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict: what was measured, against what, and why it passed or failed."""

    name: str
    kind: str
    passed: bool
    value: Any
    threshold: Any
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    """A policy's verdict on a model version: passed only when every rule passed."""

    policy: str
    model: str  # models:/name/version
    model_version_id: str
    passed: bool
    rules: list[RuleResult]

    @property
    def failures(self) -> list[RuleResult]:
        """The rules that failed."""
        return [r for r in self.rules if not r.passed]

    @property
    def reason(self) -> str:
        """One line: which rules failed and why, or that every rule passed."""
        if self.passed:
            return f"gate {self.policy} passed for {self.model}: all {len(self.rules)} rules passed"
        failed = "; ".join(f"{r.name}: {r.message}" for r in self.failures)
        return (
            f"gate {self.policy} failed for {self.model}: "
            f"{len(self.failures)} of {len(self.rules)} rules failed: {failed}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            **{k: v for k, v in asdict(self).items() if k != "rules"},
            "reason": self.reason,
            "rules": [r.to_dict() for r in self.rules],
        }


# -- policies ---------------------------------------------------------------------------------


def load_policy(policy: GatePolicy | dict[str, Any] | str | Path) -> GatePolicy:
    """A GatePolicy from itself, a dict, a YAML file path or a YAML string."""
    if isinstance(policy, GatePolicy):
        return policy
    data, where = read_mapping(policy, "gate policy")
    if not isinstance(data, dict) and not isinstance(policy, (str, Path)):
        raise InvalidInput(
            "a gate policy must be a GatePolicy, a dict, a path or a YAML string, "
            f"got {type(policy).__name__}"
        )
    if not isinstance(data, dict):
        raise InvalidInput(f"{where} must be a mapping with kind: Gate, name and rules")
    try:
        parsed = GatePolicy.model_validate(data)
    except ValidationError as exc:
        bad = validation_error("Gate", exc, GatePolicy)
        raise InvalidInput(f"{where}: {bad.message}", details=bad.details) from None
    _check_data(parsed, where)
    return parsed


def _check_data(policy: GatePolicy, where: str) -> None:
    """Rules that evaluate on data need a dataset and a label, on the rule or the policy; the
    positive class and average of the policy and of each rule must go together."""
    try:
        check_rule(policy.positive, policy.average)
    except RuleError as exc:
        _bad(where, exc.field, str(exc))
    for index, rule in enumerate(policy.rules):
        spec: MetricRule | RegressionRule | None = rule.metric or rule.regression
        if spec is None or (isinstance(spec, MetricRule) and spec.source == "run"):
            continue
        prefix = f"rules.{index}.{rule.kind}"
        data = spec.data or policy.data
        needs_data = isinstance(spec, RegressionRule) or spec.source == "evaluation"
        if data is None and needs_data:
            why = (
                "a regression rule compares both versions on the same data"
                if isinstance(spec, RegressionRule)
                else "source: evaluation reads the version's evaluation on a dataset"
            )
            _bad(where, f"{prefix}.data", f"{why}: set data on the rule or the policy")
        try:
            check_rule(spec.positive, spec.average)
        except RuleError as exc:
            _bad(where, f"{prefix}.{exc.field}", str(exc))
        if data is not None and (spec.label or policy.label) is None:
            _bad(
                where, f"{prefix}.label", f"evaluating on {data} needs the label column: set label"
            )


def _bad(where: str, field_path: str, message: str) -> None:
    raise InvalidInput(
        f"{where}: Gate spec: {field_path}: {message}",
        details={"field": field_path, "errors": [message]},
    )


def _scoring(
    policy: GatePolicy, spec: MetricRule | RegressionRule
) -> tuple[Label | None, Average | None]:
    """The positive class and average a rule evaluates with.

    The rule's pair when it names either, else the policy's.
    """
    if spec.positive is not None or spec.average is not None:
        return spec.positive, spec.average
    return policy.positive, policy.average


# -- checking ---------------------------------------------------------------------------------


def check(
    model_uri: str,
    policy: GatePolicy | dict[str, Any] | str | Path,
    *,
    workspace: Workspace | None = None,
    actor: str | None = None,
) -> GateResult:
    """Measure every rule of ``policy`` on a model version; audit the verdict as ``gate.check``.

    Example::

        result = check("models:/churn@challenger", "gates.yaml")
        if not result.passed:
            print(result.reason)
    """
    return check_policy(model_uri, load_policy(policy), actor=actor, workspace=workspace)


@operation("POST /gates/checks")
def check_policy(
    model_uri: str,
    policy: GatePolicy,
    *,
    actor: str | None = None,
    workspace: Workspace | None = None,
) -> GateResult:
    """:func:`check` with a policy already loaded: measure its rules, audit the verdict."""
    from cauce.registry.models import resolve

    ws = workspace or current()
    rules = load_policy(policy)
    _check_data(rules, f"gate policy {rules.name!r}")
    version = resolve(model_uri, workspace=ws)
    context = _Context(ws, rules, version)
    result = verdict(rules, version.uri, version.id, context.measure)
    results = result.rules
    with ws.store.write() as conn:
        audit.record(
            conn,
            actor or ws.user,
            "gate.check",
            "model_version",
            version.id,
            after={
                "policy": rules.name,
                "model": version.uri,
                "requested": model_uri,
                "passed": result.passed,
                "reason": result.reason,
                "failed": [r.name for r in result.failures],
                "rules": [_jsonable(r.to_dict()) for r in results],
            },
        )
    return result


def verdict(
    policy: GatePolicy,
    subject: str,
    subject_id: str,
    measure: Callable[[str, Rule], RuleResult],
) -> GateResult:
    """Every rule of ``policy`` measured on a subject (``models:/…``, ``prompts:/…``); a rule
    that cannot be measured fails with the reason instead of stopping the others."""
    results = []
    for name, rule in zip(policy.rule_names(), policy.rules, strict=True):
        try:
            results.append(measure(name, rule))
        except CauceError as exc:
            results.append(
                RuleResult(name, rule.kind, False, None, None, f"could not be measured: {exc}")
            )
    return GateResult(
        policy=policy.name,
        model=subject,
        model_version_id=subject_id,
        passed=all(r.passed for r in results),
        rules=results,
    )


class _Context:
    """What the rules of one check share: the version, its run, resolved data, evaluations."""

    def __init__(self, ws: Workspace, policy: GatePolicy, version: ModelVersion) -> None:
        self.ws = ws
        self.policy = policy
        self.version = version
        self._run: Run | None = None
        self._data: dict[str, DatasetVersion] = {}
        self._evaluations: dict[tuple[Any, ...], Evaluation] = {}

    def measure(self, name: str, rule: Rule) -> RuleResult:
        """One rule's verdict."""
        if rule.metric is not None:
            return self._metric(name, rule.metric)
        if rule.regression is not None:
            return self._regression(name, rule.regression)
        if rule.checks_passed is not None:
            return self._checks_passed(name, rule.checks_passed)
        assert rule.card is not None
        return self._card(name, rule.card)

    # -- shared lookups ------------------------------------------------------------------

    def run(self) -> Run | None:
        """The version's source run, or None when it was registered without one."""
        from cauce.tracking.runs import get_run

        if self._run is None and self.version.run_id is not None:
            self._run = get_run(self.version.run_id, workspace=self.ws)
        return self._run

    def dataset(self, ref: str) -> DatasetVersion:
        """A dataset version, resolved once per check (a bare name: the newest version now)."""
        from cauce.data.assets import get_version

        if ref not in self._data:
            self._data[ref] = get_version(ref.removeprefix("datasets:/"), workspace=self.ws)
        return self._data[ref]

    def evaluation(
        self, version: ModelVersion, spec: MetricRule | RegressionRule
    ) -> tuple[Evaluation, DatasetVersion]:
        """The version's stored evaluation on the rule's data, evaluated now when missing (once
        per check: rules that share data, label and rule share it)."""
        from cauce.registry.evaluations import evaluate

        data = spec.data or self.policy.data
        label = spec.label or self.policy.label
        assert data is not None and label is not None  # checked when the policy was loaded
        dataset = self.dataset(data)
        positive, average = _scoring(self.policy, spec)
        key = (version.id, dataset.id, label, positive, average)
        if key not in self._evaluations:
            self._evaluations[key] = evaluate(
                version.uri,
                dataset,
                label=label,
                positive=positive,
                average=average,
                workspace=self.ws,
            )
        return self._evaluations[key], dataset

    # -- rules ---------------------------------------------------------------------------

    def _metric(self, name: str, spec: MetricRule) -> RuleResult:
        threshold = {"min": spec.min, "max": spec.max}
        threshold = {k: v for k, v in threshold.items() if v is not None}
        details: dict[str, Any] = {}
        use_data = spec.source != "run" and (spec.data or self.policy.data) is not None
        if use_data:
            evaluation, dataset = self.evaluation(self.version, spec)
            where = f"on {dataset.ref}"
            available = evaluation.metrics
            details = {"source": "evaluation", "dataset": dataset.ref, "label": evaluation.label}
            if evaluation.positive is not None:
                details["positive"] = evaluation.positive
            if evaluation.average is not None:
                details["average"] = evaluation.average
        else:
            run = self.run()
            if run is None:
                return RuleResult(
                    name, "metric", False, None, threshold,
                    f"{self.version.uri} has no source run to read {spec.name} from",
                )  # fmt: skip
            where = f"in run {run.info.run_id[:8]}"
            available = run.data.metrics
            details = {"source": "run", "run_id": run.info.run_id}
        value = available.get(spec.name)
        if value is None:
            known = ", ".join(sorted(available)) or "none"
            why = evaluation.not_computed.get(spec.name) if use_data else None
            return RuleResult(
                name, "metric", False, None, threshold,
                f"{spec.name} was not computed {where}: {why}" if why
                else f"no metric {spec.name} {where} (measured: {known})",
                details,
            )  # fmt: skip
        problems = []
        if math.isnan(value):
            problems.append("is NaN")
        if spec.min is not None and not value >= spec.min:
            problems.append(f"< min {spec.min:g}")
        if spec.max is not None and not value <= spec.max:
            problems.append(f"> max {spec.max:g}")
        bounds = " and ".join(f"{k} {v:g}" for k, v in threshold.items())
        message = (
            f"{spec.name} {value:.4g} {where} " + ", ".join(problems)
            if problems
            else f"{spec.name} {value:.4g} {where} meets {bounds}"
        )
        return RuleResult(name, "metric", not problems, value, threshold, message, details)

    def _regression(self, name: str, spec: RegressionRule) -> RuleResult:
        from cauce.registry.evaluations import lower_is_better
        from cauce.registry.models import resolve

        higher = (
            spec.higher_is_better
            if spec.higher_is_better is not None
            else not lower_is_better(spec.metric)
        )
        try:
            baseline = resolve(f"models:/{self.version.name}@{spec.against}", workspace=self.ws)
        except NotFound:
            return RuleResult(
                name, "regression", True, None, spec.max_drop,
                f"no {spec.against} yet: nothing to compare against (first model)",
                {"against": spec.against, "baseline_version": None},
            )  # fmt: skip
        details: dict[str, Any] = {
            "metric": spec.metric,
            "against": spec.against,
            "baseline_version": baseline.version,
            "higher_is_better": higher,
        }
        if baseline.id == self.version.id:
            return RuleResult(
                name, "regression", True, 0.0, spec.max_drop,
                f"{self.version.uri} is the {spec.against} itself", details,
            )  # fmt: skip
        candidate, dataset = self.evaluation(self.version, spec)
        reference, _ = self.evaluation(baseline, spec)
        details["dataset"] = dataset.ref
        rule = {"positive": candidate.positive, "average": candidate.average}
        details.update({k: v for k, v in rule.items() if v is not None})  # the rule counted by
        missing = [
            f"{e.model_uri}" + (f" ({why})" if (why := e.not_computed.get(spec.metric)) else "")
            for e in (candidate, reference)
            if spec.metric not in e.metrics
        ]
        if missing:
            return RuleResult(
                name, "regression", False, None, spec.max_drop,
                f"no metric {spec.metric} on {dataset.ref} for {', '.join(missing)}", details,
            )  # fmt: skip
        new, old = candidate.metrics[spec.metric], reference.metrics[spec.metric]
        drop = old - new if higher else new - old
        details.update(candidate=new, baseline=old)
        passed = not math.isnan(drop) and drop <= spec.max_drop + 1e-12
        compared = (
            f"{spec.metric} {new:.4g} vs {spec.against} v{baseline.version} {old:.4g} "
            f"on {dataset.ref}"
        )
        if passed:
            message = f"{compared}: drop {max(drop, 0.0):.4g} within max {spec.max_drop:g}"
        else:
            message = f"{compared}: drop {drop:.4g} > max {spec.max_drop:g}"
        return RuleResult(name, "regression", passed, drop, spec.max_drop, message, details)

    def _checks_passed(self, name: str, spec: ChecksPassedRule) -> RuleResult:
        run = self.run()
        if run is None:
            return RuleResult(
                name, "checks_passed", False, None, None,
                f"{self.version.uri} has no source run: its training data is unknown",
            )  # fmt: skip
        with self.ws.store.read() as conn:
            inputs = _run_datasets(conn, run.info.run_id, spec.contexts)
            verdicts = {ref: _data_verdict(conn, dv_id, spec.suite) for dv_id, ref in inputs}
        if not verdicts:
            which = f" in context {', '.join(spec.contexts)}" if spec.contexts else ""
            return RuleResult(
                name, "checks_passed", False, 0, None,
                f"run {run.info.run_id[:8]} recorded no dataset inputs{which}",
            )  # fmt: skip
        problems = [f"{ref}: {why}" for ref, (ok, why, _) in verdicts.items() if not ok]
        details = {
            "suite": spec.suite,
            "datasets": {ref: suites for ref, (_, _, suites) in verdicts.items()},
        }
        which = f"check suite {spec.suite}" if spec.suite else "their check suites"
        message = "; ".join(problems) if problems else f"{', '.join(verdicts)} passed {which}"
        # value: dataset versions that passed; threshold: how many must (all of them).
        passing = len(verdicts) - len(problems)
        return RuleResult(
            name, "checks_passed", not problems, passing, len(verdicts), message, details
        )

    def _card(self, name: str, spec: CardRule) -> RuleResult:
        missing = [f for f in dict.fromkeys(spec.required) if not self._card_field(f)]
        message = (
            f"missing or empty: {', '.join(missing)}"
            if missing
            else f"{len(set(spec.required))} required fields present"
        )
        return RuleResult(
            name, "card", not missing, missing, list(spec.required), message, {"missing": missing}
        )

    def _card_field(self, name: str) -> bool:
        """Whether card field ``name`` is present and non-empty."""
        import yaml

        from cauce.registry.models import get_model

        version = self.version
        if name.startswith("tags."):
            name, tag_only = name.removeprefix("tags."), True
        else:
            tag_only = name not in CARD_FIELDS
        if tag_only:
            tags = {**get_model(version.name, workspace=self.ws).tags, **version.tags}
            return _filled(tags.get(name))
        if name == "description":
            model = get_model(version.name, workspace=self.ws)
            return _filled(version.description) or _filled(model.description)
        if name == "signature":
            return bool((version.signature or {}).get("inputs"))
        if name in ("input_example", "requirements"):
            spec = yaml.safe_load(self.ws.artifacts.read_bytes(version.spec_sha256))
            return bool(spec.get(name))
        run = self.run()
        if run is None:
            return False
        return {
            "source_run": True,
            "training_data": bool(run.inputs.dataset_inputs),
            "metrics": bool(run.data.metrics),
            "params": bool(run.data.params),
            "code_version": _filled(run.info.source_commit),
        }[name]


# -- helpers ----------------------------------------------------------------------------------


def _run_datasets(conn: Any, run_id: str, contexts: list[str] | None) -> list[tuple[str, str]]:
    """``(dataset version id, name@version)`` of every dataset version a run read.

    From ``run_inputs`` (filtered by context when given) and, without a context filter, from
    lineage edges dataset version → run (``input``) as well.
    """
    from sqlalchemy import select

    from cauce.store.schema import dataset_versions, datasets, lineage_edges, run_inputs

    ids = set()
    query = select(run_inputs.c.dataset_version_id).where(run_inputs.c.run_id == run_id)
    if contexts:
        query = query.where(run_inputs.c.context.in_(contexts))
    ids |= set(conn.execute(query).scalars())
    if not contexts:
        e = lineage_edges.c
        ids |= set(
            conn.execute(
                select(e.src_id).where(
                    e.src_kind == "dataset_version",
                    e.dst_kind == "run",
                    e.dst_id == run_id,
                    e.relation == "input",
                )
            ).scalars()
        )
    if not ids:
        return []
    rows = conn.execute(
        select(dataset_versions.c.id, datasets.c.name, dataset_versions.c.version)
        .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
        .where(dataset_versions.c.id.in_(sorted(ids)))
        .order_by(datasets.c.name, dataset_versions.c.version)
    ).all()
    return [(r.id, f"{r.name}@{r.version}") for r in rows]


def _data_verdict(
    conn: Any, dataset_version_id: str, suite: str | None
) -> tuple[bool, str, dict[str, bool]]:
    """Whether a dataset version passed its checks: ``(ok, why not, {suite: passed})``.

    The newest stored result of each suite counts (of ``suite`` only, when given). A version
    without results of its own takes those of the version it was promoted from unchanged (same
    content hash), since the same content gets the same verdict.
    """
    from sqlalchemy import select

    from cauce.store.schema import check_results, dataset_versions, lineage_edges

    def newest(version_id: str) -> dict[str, Any]:
        query = (
            select(check_results)
            .where(check_results.c.dataset_version_id == version_id)
            .order_by(check_results.c.created_at.desc(), check_results.c.id)
        )
        if suite is not None:
            query = query.where(check_results.c.suite == suite)
        found: dict[str, Any] = {}
        for row in conn.execute(query):
            found.setdefault(row.suite, row)
        return found

    latest = newest(dataset_version_id)
    if not latest:
        e = lineage_edges.c
        source = dataset_versions.alias("source")
        target = dataset_versions.alias("target")
        origins = conn.execute(
            select(e.src_id)
            .join(source, source.c.id == e.src_id)
            .join(target, target.c.id == e.dst_id)
            .where(
                e.src_kind == "dataset_version",
                e.dst_kind == "dataset_version",
                e.dst_id == dataset_version_id,
                e.relation == "promoted",
                source.c.content_hash == target.c.content_hash,
            )
        ).scalars()
        for origin in origins:
            latest = newest(origin)
            if latest:
                break
    if not latest:
        what = f"check suite {suite!r}" if suite else "any check suite"
        return False, f"never validated with {what}", {}
    suites = {name: bool(row.passed) for name, row in sorted(latest.items())}
    failed = [
        f"{name} failed ({', '.join(_failed_checks(latest[name].results)) or 'checks failed'})"
        for name, passed in suites.items()
        if not passed
    ]
    return not failed, "; ".join(failed), suites


def _failed_checks(results: list[dict[str, Any]]) -> list[str]:
    return [
        str(c.get("name"))
        for c in results
        if not c.get("passed") and c.get("severity", "error") == "error"
    ]


def _filled(value: Any) -> bool:
    return value is not None and (not isinstance(value, str) or bool(value.strip()))


def _jsonable(value: Any) -> Any:
    """NaN and infinity as strings: the audit log is JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
