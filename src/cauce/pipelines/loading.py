"""Pipelines named on the command line: ``FILE.py:NAME`` loaded, ``key=value`` converted."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from cauce.errors import InvalidInput, NotFound
from cauce.pipelines.decorators import Pipeline

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def load_pipeline(target: str, root: Path | None = None) -> Pipeline:
    """The ``@cauce.pipeline`` object ``NAME`` defined in ``FILE.py`` (``FILE.py:NAME``); a
    relative path is taken from ``root`` when given (specs name files from the workspace root)."""
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise InvalidInput(f"expected FILE.py:NAME, got {target!r}")
    path = Path(path_text).expanduser()
    path = (root / path if root is not None and not path.is_absolute() else path).resolve()
    if not path.is_file():
        raise NotFound(f"no such file: {path_text}")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_name = f"cauce_pipeline_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"{path_text} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(path.parent)
    if folder not in sys.path:  # so that the file can import its neighbours
        sys.path.insert(0, folder)
    spec.loader.exec_module(module)
    import cloudpickle

    # Worker processes cannot import this module by its made-up name: the process executor
    # sends its functions (steps and the helpers they call) by value instead.
    cloudpickle.register_pickle_by_value(module)
    found = getattr(module, name, None)
    if found is None:
        raise NotFound(f"{path_text} defines no {name!r}")
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{path_text}:{name} is not a @cauce.pipeline function")
    return found


def parse_params(pipeline: Pipeline, pairs: list[str]) -> dict[str, Any]:
    """``key=value`` strings as the pipeline function's parameters, typed by its annotations."""
    accepted = pipeline.signature.parameters
    try:
        hints = typing.get_type_hints(pipeline.fn)
    except Exception:  # an annotation that does not resolve: fall back to the raw ones
        hints = {k: p.annotation for k, p in accepted.items()}
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(f"expected -p key=value, got {pair!r}")
        if key not in accepted:
            raise InvalidInput(
                f"pipeline {pipeline.name!r} takes no parameter {key!r} "
                f"(it takes: {', '.join(accepted) or 'none'})",
                code="unknown-parameter",
            )
        params[key] = convert(key, text, hints.get(key, str))
    return params


def convert(key: str, text: str, annotation: Any) -> Any:
    """``text`` as a value of ``annotation`` (str, int, float, bool, Path, list, dict…)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.lower() in ("none", "null") and len(options) < len(typing.get_args(annotation)):
            return None
        annotation = options[0] if len(options) == 1 else str
        origin = typing.get_origin(annotation)
    target = origin or annotation
    try:
        if target is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if target in (int, float, str):
            return target(text)
        if target is Path:
            return Path(text)
        if target in (list, dict, tuple):
            value = json.loads(text)
            if not isinstance(value, list if target is tuple else target):
                raise ValueError(text)
            return tuple(value) if target is tuple else value
    except ValueError:
        label = getattr(target, "__name__", str(target))
        raise InvalidInput(f"parameter {key!r} must be a {label}, got {text!r}") from None
    return text
