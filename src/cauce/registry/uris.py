"""Model URIs: ``models:/churn/3``, ``models:/churn@champion``, ``models:/churn``, ``runs:/…``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cauce.errors import InvalidInput

_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))?/?$")
_RUNS = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/`` URI; neither version nor alias means the newest version."""

    name: str
    version: int | None = None
    alias: str | None = None


@dataclass(frozen=True)
class RunModelRef:
    """A parsed ``runs:/<run id>/<path>`` URI."""

    run_id: str
    path: str


def parse(uri: str) -> ModelRef | RunModelRef:
    """Parse a model URI; anything else is an InvalidInput that shows the accepted forms."""
    if not isinstance(uri, str):
        raise InvalidInput(f"a model URI must be a string, got {type(uri).__name__}")
    match = _MODELS.match(uri)
    if match:
        version = match["version"]
        if version is not None and version != "latest":
            if not version.isdigit():
                raise InvalidInput(f"model version must be a number in {uri!r}")
            return ModelRef(match["name"], version=int(version))
        alias = match["alias"]
        # "latest" is reserved (set_alias refuses it): @latest means the newest version.
        return ModelRef(match["name"], alias=None if alias == "latest" else alias)
    match = _RUNS.match(uri)
    if match:
        return RunModelRef(match["run_id"], match["path"].strip("/"))
    raise InvalidInput(
        f"not a model URI: {uri!r}",
        hint="use models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME or runs:/RUN_ID/PATH",
    )
