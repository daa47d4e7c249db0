"""Autologging of scikit-learn: every ``fit`` tracked without a line of tracking code.

After :func:`autolog`, fitting a scikit-learn estimator (``fit``, ``fit_transform`` or
``fit_predict`` of any class scikit-learn lists, pipelines and searches included) records, in
the active run or in a run of its own:

- the estimator's parameters (``get_params(deep=True)``: a pipeline's steps' too), and the tags
  ``estimator_name`` and ``estimator_class``;
- training metrics on the data it was fitted on, by the rules of :mod:`cauce.stats.quality`:
  ``training_accuracy``, ``training_precision``, ``training_recall``, ``training_f1``,
  ``training_roc_auc`` (with ``predict_proba``) for a classifier; ``training_mae``,
  ``training_rmse``, ``training_r2`` for a regressor; ``training_score`` (the estimator's own
  ``score``) for either;
- for a search (``GridSearchCV``, ``RandomizedSearchCV``, …): its best parameters as
  ``best_<name>`` params, ``best_cv_score``, and a child run for each of the best
  ``max_tuning_runs`` candidates with its parameters and cross-validated scores;
- the fitted model as ``model`` (an input example of five rows gives it a signature), and a
  registered version when ``registered_model`` is given;
- the dataset version the data came from as a ``training`` input, when ``X`` or ``y`` was taken
  from a frame that :func:`cauce.data.load` returned (pandas keeps the version's name in the
  frame's ``attrs`` through column and row selection and ``train_test_split``; it drops it
  when frames of different versions are joined).

Only the outermost fit is recorded: a pipeline's steps, a search's candidates and a forest's
trees fit inside it. A fit that starts while another is recorded, in any thread of the process,
counts as inside it (joblib fits a forest's trees in threads of its own), so two threads that
fit at once record only the first.
Recording never breaks a fit: what cannot be recorded is reported as a warning, and the
fitted estimator is returned as scikit-learn returns it.
"""

from __future__ import annotations

import functools
import inspect
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cauce.errors import InvalidInput
from cauce.tracking import fluent
from cauce.validation import MAX_PARAM_VALUE, check_name

__all__ = ["autolog"]

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
EXAMPLE_ROWS = 5


@dataclass
class _Settings:
    log_models: bool = True
    log_datasets: bool = True
    registered_model: str | None = None
    max_tuning_runs: int = 5


_settings = _Settings()
_patched: list[tuple[type, str, Callable[..., Any]]] = []  # (class, method, original)
_lock = threading.Lock()
# Whether a recorded fit runs. For the whole process, not per thread: a forest with n_jobs
# fits its trees in joblib's threads, inside its own fit.
_fitting = False


def autolog(
    *,
    log_models: bool = True,
    log_datasets: bool = True,
    registered_model: str | None = None,
    max_tuning_runs: int = 5,
    disable: bool = False,
) -> None:
    """Record every scikit-learn fit from now on in this process (``disable=True`` stops it).

    Example::

        cauce.autolog(registered_model="churn")
        with cauce.start_run(experiment="churn"):
            LogisticRegression(C=0.5).fit(X, y)   # params, training metrics, model v1
    """
    if isinstance(max_tuning_runs, bool) or not isinstance(max_tuning_runs, int):
        raise InvalidInput(
            f"max_tuning_runs must be a whole number, got {max_tuning_runs!r}",
            details={"field": "max_tuning_runs"},
        )
    if max_tuning_runs < 0:
        raise InvalidInput(
            f"max_tuning_runs must be 0 or more, got {max_tuning_runs}",
            details={"field": "max_tuning_runs"},
        )
    if registered_model is not None:
        check_name(registered_model, "model name")
    with _lock:
        if disable:
            for cls, name, original in reversed(_patched):
                setattr(cls, name, original)
            _patched.clear()
            return
        _settings.log_models = log_models
        _settings.log_datasets = log_datasets
        _settings.registered_model = registered_model
        _settings.max_tuning_runs = max_tuning_runs
        if _patched:
            return  # on already: the settings above apply to the next fits
        from cauce.estimator_files import estimator_classes

        done: set[tuple[type, str]] = set()
        for cls in estimator_classes():
            for name in FIT_METHODS:
                # Wrapped where it is defined (GridSearchCV's fit is BaseSearchCV's), once.
                owner = next((c for c in cls.__mro__ if name in c.__dict__), None)
                if owner is None or (owner, name) in done:
                    continue
                done.add((owner, name))
                original = owner.__dict__[name]
                if callable(original):
                    setattr(owner, name, _recorded(original))
                    _patched.append((owner, name, original))


def _recorded(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        global _fitting
        with _lock:
            outermost = not _fitting
            _fitting = True
        if not outermost:  # a pipeline's step, a search's candidate, a forest's tree
            return original(estimator, *args, **kwargs)
        try:
            return _fit_in_a_run(original, estimator, args, kwargs)
        finally:
            with _lock:
                _fitting = False

    return fit


def _fit_in_a_run(
    original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if fluent.active_run() is not None:
        result = original(estimator, *args, **kwargs)
        _record(estimator, original, args, kwargs)
        return result
    with fluent.start_run(run_name=type(estimator).__name__):
        result = original(estimator, *args, **kwargs)  # a failing fit ends the run FAILED
        _record(estimator, original, args, kwargs)
    return result


def _record(
    estimator: Any, original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    X, y = _data(original, estimator, args, kwargs)
    _attempt("params", lambda: fluent.log_params(_params(estimator.get_params(deep=True))))
    _attempt(
        "tags",
        lambda: fluent.set_tags(
            {
                "estimator_name": type(estimator).__name__,
                "estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            }
        ),
    )
    if _settings.log_datasets:
        _attempt("the training data", lambda: _log_inputs(X, y))
    if X is not None and y is not None:
        _attempt("training metrics", lambda: fluent.log_metrics(_training_metrics(estimator, X, y)))
    if hasattr(estimator, "cv_results_") and hasattr(estimator, "best_params_"):
        _attempt("the search's results", lambda: _record_search(estimator))
    if _settings.log_models:
        _attempt("the model", lambda: _log_model(estimator, X))


def _attempt(what: str, record: Callable[[], Any]) -> None:
    try:
        record()
    except Exception as exc:
        warnings.warn(f"cauce.autolog: {what} not recorded: {exc}", stacklevel=5)


def _data(
    original: Callable[..., Any], estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any]:
    """The X and y a fit was given, by name as scikit-learn names them."""
    try:
        bound = inspect.signature(original).bind(estimator, *args, **kwargs).arguments
    except TypeError:  # the fit itself refused these arguments, and said so
        return None, None
    return bound.get("X"), bound.get("y", bound.get("Y"))


def _log_inputs(*data: Any) -> None:
    """The dataset versions that the fit's data was loaded from, as the run's training inputs."""
    from cauce.data.assets import VERSION_ATTR

    refs = set()
    for part in data:  # a frame or a column; an array has no attrs
        attrs = getattr(part, "attrs", None)
        if isinstance(attrs, dict) and isinstance(attrs.get(VERSION_ATTR), str):
            refs.add(attrs[VERSION_ATTR])
    for ref in sorted(refs):
        fluent.log_input(ref, context="training")


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as text, a nested estimator by its repr, cut to what a param holds."""
    return {key: str(value)[:MAX_PARAM_VALUE] for key, value in params.items()}


def _training_metrics(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    from sklearn.base import is_classifier, is_regressor

    from cauce.stats import quality

    metrics: dict[str, float | None] = {}
    if is_classifier(estimator):
        scores = estimator.predict_proba(X) if hasattr(estimator, "predict_proba") else None
        found = quality.classification_metrics(
            y, estimator.predict(X), scores, labels=list(getattr(estimator, "classes_", []))
        )
        metrics = {f"training_{name}": value for name, value in found.items()}
    elif is_regressor(estimator):
        found = quality.regression_metrics(y, estimator.predict(X))
        metrics = {f"training_{name}": value for name, value in found.items()}
    if hasattr(estimator, "score") and (is_classifier(estimator) or is_regressor(estimator)):
        metrics["training_score"] = float(estimator.score(X, y))
    return {name: value for name, value in metrics.items() if value is not None}


def _record_search(search: Any) -> None:
    """A search's best candidate on its run, and its best candidates as child runs."""
    import numpy as np

    fluent.log_params(_params({f"best_{k}": v for k, v in search.best_params_.items()}))
    if getattr(search, "best_score_", None) is not None:
        fluent.log_metric("best_cv_score", float(search.best_score_))
    results = search.cv_results_
    ranks = [key for key in results if key.startswith("rank_test_")]
    if not ranks or not _settings.max_tuning_runs:
        return
    order = np.argsort(np.asarray(results[ranks[0]]), kind="stable")[: _settings.max_tuning_runs]
    scores = [key for key in results if key.startswith(("mean_", "std_")) and "_time" not in key]
    name = type(search.estimator).__name__
    for index in order:
        rank = int(results[ranks[0]][index])
        with fluent.start_run(run_name=f"{name} rank {rank}", nested=True):
            fluent.log_params(_params(results["params"][index]))
            fluent.log_metrics({key: float(results[key][index]) for key in scores})


def _log_model(estimator: Any, X: Any) -> None:
    from cauce.registry.logging import log_model

    example = None
    if X is not None:
        try:
            example = X.iloc[:EXAMPLE_ROWS] if hasattr(X, "iloc") else X[:EXAMPLE_ROWS]
        except (TypeError, IndexError, KeyError):  # a sparse matrix or a generator: no example
            example = None
    log_model(estimator, "model", registered_model=_settings.registered_model,
              input_example=example)  # fmt: skip
