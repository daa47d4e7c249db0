"""Hyperparameter sweeps: an Optuna study whose every trial is a child run.

A search space maps each parameter to its domain::

    {"C": (0.01, 10.0, "log"),     # float range, sampled on a log scale
     "max_depth": (2, 12),         # int range (both ends ints)
     "alpha": (0.0, 1.0),          # float range
     "kernel": ["rbf", "linear"]}  # categorical choices
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from cauce.errors import InvalidInput
from cauce.tracking import fluent
from cauce.tracking.experiments import get_experiment
from cauce.validation import check_key


@dataclass(frozen=True)
class SweepResult:
    """The outcome of a sweep: the best trial and where every trial was tracked."""

    parent_run_id: str
    best_run_id: str
    best_params: dict[str, Any]
    best_value: float
    n_trials: int
    n_failed: int


_CHOICE_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Domain:
    """One checked dimension of a search space."""

    kind: str  # "int", "float" or "categorical"
    low: Any = None
    high: Any = None
    log: bool = False
    choices: tuple[Any, ...] = ()


def check_domain(name: str, domain: Any) -> Domain:
    """The Domain that ``domain`` describes, or an InvalidInput naming the parameter."""
    if isinstance(domain, list):
        if not domain:
            raise InvalidInput(f"sweep space {name!r}: the list of choices is empty")
        odd = [c for c in domain if not isinstance(c, _CHOICE_TYPES)]
        if odd:
            raise InvalidInput(
                f"sweep space {name!r}: choice {odd[0]!r} is not None, a bool, a number or a string"
            )
        return Domain("categorical", choices=tuple(domain))
    if isinstance(domain, tuple) and len(domain) in (2, 3):
        low, high = domain[0], domain[1]
        if len(domain) == 3 and domain[2] not in ("log", "linear"):
            raise InvalidInput(f"sweep space {name!r}: the third item must be 'log' or 'linear'")
        log = len(domain) == 3 and domain[2] == "log"
        if isinstance(low, bool) or isinstance(high, bool):
            raise InvalidInput(f"sweep space {name!r}: use a list [True, False] for booleans")
        if isinstance(low, Real) and isinstance(high, Real):
            if not (math.isfinite(low) and math.isfinite(high)):
                raise InvalidInput(f"sweep space {name!r}: the bounds must be finite numbers")
            if not low < high:
                raise InvalidInput(f"sweep space {name!r}: low {low!r} must be below high {high!r}")
            if log and low <= 0:
                raise InvalidInput(
                    f"sweep space {name!r}: a log scale needs a low bound above 0, not {low!r}"
                )
            if isinstance(low, Integral) and isinstance(high, Integral):
                return Domain("int", int(low), int(high), log)
            return Domain("float", float(low), float(high), log)
    raise InvalidInput(
        f"sweep space {name!r}: {domain!r} is not a domain",
        hint="use (low, high), (low, high, 'log') or a list of choices",
    )


def _suggest(trial: Any, name: str, domain: Domain) -> Any:
    if domain.kind == "categorical":
        return trial.suggest_categorical(name, domain.choices)
    if domain.kind == "int":
        return trial.suggest_int(name, domain.low, domain.high, log=domain.log)
    return trial.suggest_float(name, domain.low, domain.high, log=domain.log)


def sweep(
    objective: Callable[[dict[str, Any]], float],
    space: Mapping[str, Any],
    n_trials: int = 20,
    *,
    direction: str = "maximize",
    metric: str = "objective",
    experiment: str | None = None,
    run_name: str = "sweep",
    seed: int | None = None,
) -> SweepResult:
    """Run ``objective(params)`` on ``n_trials`` points of ``space``, each as a child run.

    The objective returns the value to optimise; it may log more metrics with ``cauce.log_*``,
    which go to its trial's run. A trial that raises is recorded as a FAILED run and the sweep
    goes on. The parent run (the active run, or a new one named ``run_name``) gets the best
    params and value.

    Example::

        result = cauce.sweep(lambda p: score(C=p["C"]), {"C": (0.01, 10.0, "log")}, n_trials=10)
    """
    import optuna

    if direction not in ("maximize", "minimize"):
        raise InvalidInput(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    if not isinstance(n_trials, int) or n_trials < 1:
        raise InvalidInput(f"n_trials must be a positive integer, got {n_trials!r}")
    if not isinstance(space, Mapping):
        raise InvalidInput(f"the sweep space must be a mapping, got {type(space).__name__}")
    if not space:
        raise InvalidInput("the sweep space is empty")
    # Checked before any run starts: a bad space would otherwise fail every trial.
    domains = {
        check_key(name, "sweep parameter"): check_domain(name, domain)
        for name, domain in space.items()
    }
    check_key(metric, "sweep metric")

    outer = fluent.active_run()
    parent = outer or fluent.start_run(experiment, run_name)
    # Trials go to the parent's experiment (a nested run otherwise gets the default one).
    trial_experiment = get_experiment(parent.info.experiment_id).name
    trial_runs: dict[int, str] = {}
    failed = 0

    def run_trial(trial: Any) -> float:
        nonlocal failed
        values = {name: _suggest(trial, name, domain) for name, domain in domains.items()}
        with fluent.start_run(trial_experiment, f"trial-{trial.number}", nested=True) as child:
            trial_runs[trial.number] = child.run_id
            fluent.log_params(values)
            fluent.set_tag("sweep.trial", trial.number)
            try:
                value = float(objective(values))
            except Exception:
                failed += 1
                raise
            if math.isnan(value):
                failed += 1
                raise InvalidInput(f"trial {trial.number}: the objective returned NaN")
            fluent.log_metric(metric, value)
            return value

    # Failed trials are recorded as FAILED runs; Optuna's own warnings would repeat each one.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.create_study(
            direction="maximize" if direction == "maximize" else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
        study.optimize(run_trial, n_trials=n_trials, catch=(Exception,))
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not completed:
            raise InvalidInput(f"every one of the {n_trials} trials failed; see their runs")
        best = study.best_trial
        best_value = float(study.best_value)
        fluent.log_params({f"best.{k}": v for k, v in best.params.items()}, run_id=parent.run_id)
        fluent.log_metric(f"best.{metric}", best_value, run_id=parent.run_id)
        result = SweepResult(
            parent_run_id=parent.run_id,
            best_run_id=trial_runs[best.number],
            best_params=dict(best.params),
            best_value=best_value,
            n_trials=len(study.trials),
            n_failed=failed,
        )
    except BaseException:
        if outer is None:
            fluent.end_run("FAILED", run_id=parent.run_id)
        raise
    finally:
        optuna.logging.set_verbosity(verbosity)
    if outer is None:
        fluent.end_run("FINISHED", run_id=parent.run_id)
    return result
