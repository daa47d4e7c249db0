"""What users write: ``@cauce.step`` and ``@cauce.pipeline``.

A step is a plain function with options (retries, backoff, timeout, cache, declared
environment). Called outside a pipeline it just runs. Called while a pipeline function is being
traced it runs nothing and returns a :class:`~cauce.pipelines.graph.Placeholder`; a placeholder
passed to another step is an edge of the DAG.

Example::

    import cauce

    @cauce.step(retries=2, cache=True)
    def clean(rows: list[int], minimum: int = 0) -> list[int]:
        return [r for r in rows if r >= minimum]

    @cauce.pipeline
    def tidy(rows: list[int], minimum: int = 0):
        return clean(rows, minimum=minimum)

    run = tidy.run(rows=[3, -1, 5], executor="local")
    run.output("clean")  # [3, 5]
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import marshal
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from cauce.errors import InvalidInput

if TYPE_CHECKING:
    from cauce.pipelines.runs import PipelineRun
    from cauce.workspace import Workspace


ANOMALY_POLICIES = ("warn", "fail", "off")


class Step:
    """A decorated step function and its options."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_backoff: float = 0.0,
        timeout: float | None = None,
        cache: bool = True,
        env: Mapping[str, str] | Sequence[str] | None = None,
        anomalies: str = "warn",
    ) -> None:
        if not callable(fn):
            raise InvalidInput(f"@step decorates a function, not {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise InvalidInput(f"step {self.name!r}: retries must be an integer >= 0")
        if not isinstance(retry_backoff, (int, float)) or retry_backoff < 0:
            raise InvalidInput(f"step {self.name!r}: retry_backoff must be seconds >= 0")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise InvalidInput(f"step {self.name!r}: timeout must be seconds > 0")
        if anomalies not in ANOMALY_POLICIES:
            raise InvalidInput(
                f"step {self.name!r}: anomalies must be one of {', '.join(ANOMALY_POLICIES)}"
            )
        self.anomalies = anomalies
        self.retries = retries
        self.retry_backoff = float(retry_backoff)
        self.timeout = float(timeout) if timeout is not None else None
        self.cache = bool(cache)
        self.env = _normalize_env(self.name, env)
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from cauce.pipelines import graph

        builder = graph.current_builder()
        if builder is None:  # outside a pipeline: a plain function call
            return self.fn(*args, **kwargs)
        return builder.add(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name}>"

    @functools.cached_property
    def source_hash(self) -> str:
        """sha256 of the step's dedented source code (of its bytecode where there is no source)."""
        try:
            code = textwrap.dedent(inspect.getsource(self.fn)).encode()
        except (OSError, TypeError):
            code = marshal.dumps(self.fn.__code__)
        return hashlib.sha256(code).hexdigest()


class Pipeline:
    """A decorated pipeline function: calling steps inside it declares the DAG."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None) -> None:
        if not callable(fn):
            raise InvalidInput(f"@pipeline decorates a function, not {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The pipeline function's arguments, defaults applied; InvalidInput names a bad one."""
        accepted = self.signature.parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        unknown = [key for key in params if key not in accepted]
        if unknown and not takes_any:
            names = ", ".join(accepted) or "none"
            raise InvalidInput(
                f"pipeline {self.name!r} takes no parameter {unknown[0]!r} (it takes: {names})",
                code="unknown-parameter",
                details={"parameter": unknown[0]},
            )
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def run(
        self,
        executor: str = "local",
        cache: bool = True,
        *,
        workspace: Workspace | None = None,
        max_workers: int | None = None,
        **params: Any,
    ) -> PipelineRun:
        """Run the pipeline with ``params``; return the stored run (status, steps, outputs).

        ``executor`` is ``"local"`` (in this process) or ``"process"`` (independent branches in a
        process pool); ``cache=False`` runs every step even when a cached output exists.
        """
        from cauce.pipelines.runner import run_pipeline

        return run_pipeline(
            self,
            params,
            executor=executor,
            cache=cache,
            workspace=workspace,
            max_workers=max_workers,
        )


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_backoff: float = 0.0,
    timeout: float | None = None,
    cache: bool = True,
    env: Mapping[str, str] | Sequence[str] | None = None,
    anomalies: str = "warn",
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_backoff: float = 0.0,
    timeout: float | None = None,
    cache: bool = True,
    env: Mapping[str, str] | Sequence[str] | None = None,
    anomalies: str = "warn",
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Declare a pipeline step, with or without options.

    ``retries`` extra attempts after a failure, ``retry_backoff`` seconds before the first retry
    (doubling each time), ``timeout`` seconds per attempt, ``cache=False`` to always run, ``env``
    the step's declared environment (a dict or a list of requirements; part of the cache key).
    ``anomalies`` says what a row count, null rate or duration out of line with the step's
    earlier runs does (see :mod:`cauce.pipelines.anomalies`): ``"warn"`` records and logs it,
    ``"fail"`` fails the step, ``"off"`` does not look.

    Example::

        @cauce.step(retries=2, timeout=60)
        def ingest(path: str) -> "pd.DataFrame": ...
    """

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(
            f,
            name=name,
            retries=retries,
            retry_backoff=retry_backoff,
            timeout=timeout,
            cache=cache,
            env=env,
            anomalies=anomalies,
        )

    return wrap(fn) if fn is not None else wrap


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(*, name: str | None = None) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Declare a pipeline: a function whose step calls form the DAG.

    Example::

        @cauce.pipeline
        def training(source: str):
            return evaluate(train(clean(ingest(source))))
    """

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name)

    return wrap(fn) if fn is not None else wrap


def _normalize_env(name: str, env: Mapping[str, str] | Sequence[str] | None) -> Any:
    if env is None:
        return None
    if isinstance(env, Mapping):
        return {str(k): str(v) for k, v in sorted(env.items())}
    if isinstance(env, (list, tuple)):
        return sorted(str(r) for r in env)
    raise InvalidInput(
        f"step {name!r}: env must be a dict or a list of requirements, not {type(env).__name__}"
    )
