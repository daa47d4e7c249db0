"""scikit-learn estimators as skops bytes: no pickle, and only the types recorded when an
estimator was saved are trusted when it is loaded. The one module that imports skops, and the
one that walks scikit-learn's packages (both would import torch, see :func:`_skops_io`)."""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Collection, Iterator
from typing import Any

from cauce.errors import IntegrityError

# The one package under sklearn whose import pulls in torch, where torch is installed.
_TORCH_COMPAT = "sklearn.externals.array_api_compat.torch"


def dumps(estimator: Any) -> tuple[bytes, list[str]]:
    """The estimator as skops bytes, and the types beyond skops' defaults it needs to load."""
    skops_io = _skops_io()
    data: bytes = skops_io.dumps(estimator)
    return data, sorted(skops_io.get_untrusted_types(data=data))


def loads(data: bytes, trusted: Collection[str], source: str, hint: str | None = None) -> Any:
    """The estimator in skops ``data`` (read from ``source``), trusting ``trusted`` beyond skops'
    defaults; an IntegrityError names any other type it needs, and nothing of it is built."""
    skops_io = _skops_io()
    unexpected = set(skops_io.get_untrusted_types(data=data)) - set(trusted)
    if unexpected:
        raise IntegrityError(
            f"{source} needs types that were not recorded as trusted: "
            f"{', '.join(sorted(unexpected))}",
            hint=hint,
        )
    return skops_io.loads(data, trusted=sorted(trusted))


def estimator_classes() -> list[type]:
    """Every estimator class scikit-learn lists (``sklearn.utils.all_estimators``), meta-estimators
    such as ``Pipeline`` and ``GridSearchCV`` included; listed without importing torch."""
    with _without_torch_adapter():
        from sklearn.utils import all_estimators

        return [cls for _, cls in all_estimators()]


def _skops_io() -> Any:
    """skops.io, imported without importing torch.

    Importing skops lists scikit-learn's estimators, and that walk imports every package under
    sklearn, the array-API adapter for torch among them, which imports torch where it is
    installed (``cauce[genai]`` installs it): 1.5 s of the 3.4 s a new process took to load a
    model.
    """
    with _without_torch_adapter():
        import skops.io

    return skops.io


@contextlib.contextmanager
def _without_torch_adapter() -> Iterator[None]:
    """A walk of sklearn's packages that leaves out its torch adapter: a stand-in with nothing
    under it while the walk runs; the real package imports as usual afterwards. Nothing is
    left out where torch or the adapter is imported already."""
    if "torch" in sys.modules or _TORCH_COMPAT in sys.modules:
        yield
        return
    stand_in = types.ModuleType(_TORCH_COMPAT)
    stand_in.__path__ = []
    sys.modules[_TORCH_COMPAT] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(_TORCH_COMPAT) is stand_in:
            del sys.modules[_TORCH_COMPAT]
