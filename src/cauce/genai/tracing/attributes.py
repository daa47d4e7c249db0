"""The attributes Cauce's spans carry (OpenTelemetry's GenAI and session names, Cauce's
cost) and the ids that name traces, spans, sessions and users, checked."""

from __future__ import annotations

import json
from typing import Any

from cauce.errors import InvalidInput

OPERATION = "gen_ai.operation.name"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
COST = "cauce.cost"
EVALUATION_EVENT = "gen_ai.evaluation.result"
# What a trace should have answered (a reviewer's ground truth), an event on the span.
EXPECTATION_EVENT = "cauce.expectation"
EXPECTATION_NAME = "cauce.expectation.name"
EXPECTATION_VALUE = "cauce.expectation.value"  # JSON
SESSION = "session.id"
# The prompt version a span rendered: Cauce's flows name one (``prompts:/name/3``), MLflow's
# ``load_prompt`` lists those its span used (``[{"name": ..., "version": ...}]``).
PROMPT_VERSION = "cauce.prompt.version"
MLFLOW_LINKED_PROMPTS = "mlflow.linkedPrompts"
# A span's ``cauce.trace.tag.KEY`` tags its trace; Langfuse's and OpenInference's lists of tags
# are keys with an empty value.
TRACE_TAG = "cauce.trace.tag."
TAG_LISTS = ("langfuse.trace.tags", "tag.tags")
USER = "user.id"
# The run a trace was made in: set on the root span while a run is active.
RUN = "cauce.run.id"
MAX_ID = 256

_HEX = frozenset("0123456789abcdef")


def check_id(value: Any, field_name: str) -> None:
    """A session's or a user's id: a text of 1 to ``MAX_ID`` characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise InvalidInput(
            f"{field_name}: a text of 1 to {MAX_ID} characters, not {value!r}",
            details={"field": field_name},
        )


def check_hex(value: str, size: int, field_name: str) -> None:
    """A trace's or a span's id: ``size`` lowercase hex characters."""
    if len(value) != size or not set(value) <= _HEX:
        raise InvalidInput(
            f"{field_name}: {size} lowercase hex characters, not {value!r}",
            details={"field": field_name},
        )


def check_evaluation_name(value: Any, field_name: str) -> None:
    """An evaluation's or feedback's name: a text that does not end in ``.label`` (a dataset
    of traces names the label of evaluation ``X`` ``eval.X.label``)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{field_name}: a non-empty text", details={"field": field_name})
    if value.endswith(".label"):
        raise InvalidInput(
            f"{field_name}: {value!r} ends in '.label', which names the label of evaluation "
            f"{value.removesuffix('.label')!r} in a dataset of traces",
            details={"field": field_name},
        )


def attribute_value(value: Any) -> Any:
    """A value as a span keeps it: text, bool, int or float as it is, a list of texts or of
    numbers as a list; anything else (a mapping, a mixed list) as JSON."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return list(value)
    return json.dumps(value, default=str)


def id_text(value: Any) -> str | None:
    """An id as a trace keeps it: text, cut to its longest; an empty one is none."""
    return None if value is None else str(value)[:MAX_ID] or None


def evaluation_attributes(
    name: str, score: float | None, label: str | None, explanation: str | None
) -> dict[str, Any]:
    """The attributes of a ``gen_ai.evaluation.result`` event."""
    found: dict[str, Any] = {"gen_ai.evaluation.name": name}
    if score is not None:
        found["gen_ai.evaluation.score.value"] = float(score)
    if label is not None:
        found["gen_ai.evaluation.score.label"] = label
    if explanation is not None:
        found["gen_ai.evaluation.explanation"] = explanation
    return found
