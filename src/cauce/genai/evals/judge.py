"""LLM-as-judge evaluators: groundedness, relevance, coherence and custom rubrics, scored 1-5.

A judge fills one written-out prompt (a system message and a user message with ``{{variable}}``
slots) with a row's inputs, sends it to a plain ``chat(messages, **params) -> str`` callable, and
reads a score and a reason out of the answer. The row passes when the score is at least the
threshold (3 by default, as Azure AI Evaluation does). An answer with no readable score, with
two different scores, or with a score off the 1-5 scale is recorded as an error on that row
(``score`` None): never a guessed score. A ``chat`` call that raises is recorded the same way.

Answers are cached by :func:`cache_key`: sha256 over the judge model, the prompt's id and
version, the parameters sent and the inputs, as canonical JSON. With a cache, a re-run reads the
answers back instead of calling ``chat`` and reproduces every score and error.

Example::

    judge = Judge(GROUNDEDNESS, chat, model="smollm2-135m", cache=MemoryCache())
    result = judge.evaluate(
        {"query": "Capital of France?", "context": "Paris is France's capital.",
         "response": "Paris."}
    )
    print(result.score, result.label, result.reason)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from cauce.errors import InvalidInput

__all__ = [
    "COHERENCE",
    "GROUNDEDNESS",
    "RELEVANCE",
    "RESPONSE_FORMAT",
    "SCALE",
    "Chat",
    "Judge",
    "JudgeCache",
    "JudgePrompt",
    "JudgeResult",
    "Judgment",
    "MemoryCache",
    "cache_key",
    "canonical_json",
    "parse_judgment",
    "rubric_prompt",
]

SCALE = (1, 5)
DEFAULT_THRESHOLD = 3
# Sent with every judge call unless the prompt or the caller says otherwise: greedy decoding
# makes a judge as repeatable as its server allows.
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0.0, "max_tokens": 300}

Chat = Callable[..., str]
"""``chat(messages: list[dict[str, str]], **params) -> str``: the judge model's answer text."""


class JudgeCache(Protocol):
    """Where judge answers are kept between runs: get and put a raw answer by its key."""

    def get(self, key: str) -> str | None:
        """The answer stored under ``key``, or None."""
        ...

    def put(self, key: str, answer: str) -> None:
        """Store ``answer`` under ``key``."""
        ...


class MemoryCache:
    """A judge cache in a dict: for one process, and for tests."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """The answer stored under ``key``, or None."""
        return self.answers.get(key)

    def put(self, key: str, answer: str) -> None:
        """Store ``answer`` under ``key``."""
        self.answers[key] = answer

    def __len__(self) -> int:
        return len(self.answers)


# -- prompts ----------------------------------------------------------------------------------

_SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# OpenAI's structured-output request for the answer form below: a server that honours it (the
# local LLM, OpenAI) can only answer in that form, which a small judge model needs.
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "judgment",
        "schema": {
            "type": "object",
            "properties": {
                "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
                "reason": {"type": "string", "maxLength": 300},
            },
            "required": ["score", "reason"],
        },
    },
}

_ANSWER_FORMAT = (
    "Answer with one JSON object and nothing else, in this form:\n"
    '{"score": <an integer from 1 to 5>, "reason": "<one or two sentences>"}'
)


@dataclass(frozen=True)
class JudgePrompt:
    """A judge's prompt: id and version (part of the cache key), messages, variables, params.

    ``system`` and ``user`` may hold ``{{name}}`` slots; every slot must be one of
    ``variables`` and every variable must have a slot. A value is inserted as text, once: a
    value holding ``{{x}}`` is not expanded again.
    """

    id: str
    version: int
    system: str
    user: str
    variables: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))

    def __post_init__(self) -> None:
        slots = set(_SLOT.findall(self.system)) | set(_SLOT.findall(self.user))
        if slots != set(self.variables):
            raise InvalidInput(
                f"judge prompt {self.id!r}: its slots {sorted(slots)} and its variables "
                f"{sorted(self.variables)} differ",
                hint="declare exactly the {{name}} slots the messages use",
            )

    def messages(self, inputs: Mapping[str, Any]) -> list[dict[str, str]]:
        """The chat messages for one row of ``inputs`` (a missing or extra variable is an error)."""
        missing = [v for v in self.variables if v not in inputs]
        extra = sorted(set(inputs) - set(self.variables))
        if missing or extra:
            raise InvalidInput(
                f"judge prompt {self.id!r} takes {list(self.variables)}: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {missing}" if missing else "",
                        f"not a variable: {extra}" if extra else "",
                    )
                    if part
                )
            )
        values = {name: _as_text(name, inputs[name]) for name in self.variables}
        return [
            {"role": "system", "content": _fill(self.system, values)},
            {"role": "user", "content": _fill(self.user, values)},
        ]


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)  # contexts: one passage per paragraph
    raise InvalidInput(
        f"judge input {name!r} must be text or a list of texts, not {type(value).__name__}"
    )


def _fill(template: str, values: Mapping[str, str]) -> str:
    return _SLOT.sub(lambda m: values[m.group(1)], template)


GROUNDEDNESS = JudgePrompt(
    id="judge.groundedness",
    version=1,
    system=(
        "You are an impartial evaluator. You judge how well a RESPONSE is grounded in a "
        "CONTEXT: every claim the response makes must be stated in, or follow directly from, "
        "the context. Use no outside knowledge: a claim that is true in the world but absent "
        "from the context is not grounded. The QUERY only tells you what the response was "
        "asked; judge grounding, not helpfulness.\n\n"
        "Scale:\n"
        "1 - Ungrounded: the response is unrelated to the context or contradicts it.\n"
        "2 - Mostly ungrounded: most claims are missing from the context or contradict it.\n"
        "3 - Partly grounded: some claims are supported, others are missing from the context.\n"
        "4 - Mostly grounded: the claims are supported but for a minor detail.\n"
        "5 - Fully grounded: every claim is supported by the context.\n\n" + _ANSWER_FORMAT
    ),
    user="QUERY:\n{{query}}\n\nCONTEXT:\n{{context}}\n\nRESPONSE:\n{{response}}",
    variables=("query", "context", "response"),
)

RELEVANCE = JudgePrompt(
    id="judge.relevance",
    version=1,
    system=(
        "You are an impartial evaluator. You judge how relevant a RESPONSE is to a QUERY: "
        "whether it addresses what was asked, completely and without drifting to other "
        "subjects. Do not judge whether the facts are true.\n\n"
        "Scale:\n"
        "1 - Irrelevant: the response does not address the query at all.\n"
        "2 - Slightly relevant: it touches the topic but does not answer the query.\n"
        "3 - Partly relevant: it answers part of the query, or answers it vaguely.\n"
        "4 - Relevant: it answers the query, missing a minor part or adding a little noise.\n"
        "5 - Fully relevant: it answers every part of the query directly.\n\n" + _ANSWER_FORMAT
    ),
    user="QUERY:\n{{query}}\n\nRESPONSE:\n{{response}}",
    variables=("query", "response"),
)

COHERENCE = JudgePrompt(
    id="judge.coherence",
    version=1,
    system=(
        "You are an impartial evaluator. You judge the coherence of a RESPONSE to a QUERY: "
        "whether its ideas are in a logical order, connect to each other, and read as one "
        "clear whole. Do not judge whether the facts are true or complete.\n\n"
        "Scale:\n"
        "1 - Incoherent: disjointed words or sentences with no logical connection.\n"
        "2 - Poorly coherent: fragments of ideas, hard to follow.\n"
        "3 - Partly coherent: the ideas are there but jump or repeat; it takes effort to "
        "follow.\n"
        "4 - Coherent: logical and easy to follow, with a minor awkward transition.\n"
        "5 - Highly coherent: every sentence follows from the previous one; clear throughout."
        "\n\n" + _ANSWER_FORMAT
    ),
    user="QUERY:\n{{query}}\n\nRESPONSE:\n{{response}}",
    variables=("query", "response"),
)


def rubric_prompt(
    name: str,
    rubric: str,
    *,
    variables: Iterable[str] = ("query", "response"),
    version: int = 1,
) -> JudgePrompt:
    """A judge prompt for a custom ``rubric`` (what a 1 and a 5 look like) over ``variables``.

    Its id is ``rubric.<name>``; change ``version`` whenever the rubric changes, so that cached
    answers to the old rubric are not read back.
    """
    names = tuple(variables)
    if not name or not rubric.strip():
        raise InvalidInput("a custom rubric needs a name and the rubric's text")
    if _SLOT.search(rubric):
        raise InvalidInput(f"rubric {name!r}: the rubric text may not hold {{{{...}}}} slots")
    user = "\n\n".join(f"{v.upper()}:\n{{{{{v}}}}}" for v in names)
    system = (
        "You are an impartial evaluator. Score the input below on a scale of 1 to 5 by this "
        f"rubric:\n\n{rubric.strip()}\n\n" + _ANSWER_FORMAT
    )
    return JudgePrompt(
        id=f"rubric.{name}", version=version, system=system, user=user, variables=names
    )


# -- reading the judge's answer ---------------------------------------------------------------


@dataclass(frozen=True)
class Judgment:
    """A score read out of a judge's answer, with its reason ("" when the judge gave none)."""

    score: int
    reason: str


_FENCE = re.compile(r"```[A-Za-z0-9_-]*")
_NUMBER = r"([-+]?\d+(?:\.\d+)?)"
_SCORE_KEYS = ("score", "rating", "grade")
_REASON_KEYS = ("reason", "explanation", "reasoning", "rationale", "justification")
_TAG_SCORE = re.compile(rf"<(score|rating|S2)>\s*{_NUMBER}\s*</\1>", re.I)
_TAG_REASON = re.compile(r"<(reason|explanation|S1)>(.*?)</\1>", re.I | re.S)
# "Score: 4", "**Rating** - 4", "score of 4", "Score: 4/5"; a "-" is a separator only before a
# space ("score -1" is -1), and a denominator other than 5 makes the score unusable.
_LABELLED = re.compile(
    rf"\b(?:score|rating|grade)\b[*_\s]*(?:is|of|=|:|-(?=\s))?[*_\s]*{_NUMBER}"
    r"(?:\s*(?:/|out of)\s*(\d+))?",
    re.I,
)
_FRACTION = re.compile(rf"{_NUMBER}\s*(?:/|out of)\s*5\b", re.I)
_BARE = re.compile(rf"[*_\s]*{_NUMBER}[*_\s.]*")
_REASON_LINE = re.compile(r"\b(?:reason|explanation|reasoning)\b[*_\s]*:[*_\s]*(.+)", re.I | re.S)


def parse_judgment(answer: str, scale: tuple[int, int] = SCALE) -> Judgment:
    """The score and reason in a judge's ``answer``; InvalidInput when none can be read.

    Read, in this order, from the first form that holds a score: a JSON object with a
    ``score`` (or ``rating``, ``grade``) key, also inside code fences or prose; a tag
    (``<score>4</score>``, Azure's ``<S2>4</S2>``); a label (``Score: 4``, ``**Rating**: 4``,
    ``score of 4``); a fraction (``4/5``, ``4 out of 5``); an answer that is only a number.
    Two different scores in the same form, a score that is not a whole number, and a score off
    ``scale`` are errors.
    """
    text = _FENCE.sub("\n", answer).strip()
    if not text:
        raise InvalidInput("the judge's answer is empty")
    for read in (_from_json, _from_tags, _from_label, _from_fraction, _from_bare):
        found = read(text)
        if found is not None:
            values, reason = found
            return Judgment(_one_score(values, scale), reason.strip() or _fallback_reason(text))
    raise InvalidInput(f"no score in the judge's answer: {_excerpt(answer)}")


def _from_json(text: str) -> tuple[list[Any], str] | None:
    decoder = json.JSONDecoder()
    scores: list[Any] = []
    reason = ""
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        for candidate in _objects(obj):
            keys = {str(k).lower(): v for k, v in candidate.items()}
            score = next((keys[k] for k in _SCORE_KEYS if k in keys), None)
            if score is None:
                continue
            scores.append(score)
            if not reason:
                reason = next((keys[k] for k in _REASON_KEYS if isinstance(keys.get(k), str)), "")
    return (scores, reason) if scores else None


def _objects(obj: Any) -> list[dict[str, Any]]:
    """``obj`` and the objects one level inside it (``{"groundedness": {"score": 4}}``)."""
    if not isinstance(obj, dict):
        return []
    return [obj, *(v for v in obj.values() if isinstance(v, dict))]


def _from_tags(text: str) -> tuple[list[Any], str] | None:
    scores = [m.group(2) for m in _TAG_SCORE.finditer(text)]
    if not scores:
        return None
    reason = _TAG_REASON.search(text)
    return scores, reason.group(2) if reason else ""


def _from_label(text: str) -> tuple[list[Any], str] | None:
    found = _LABELLED.findall(text)
    for score, out_of in found:
        if out_of and int(out_of) != SCALE[1]:
            raise InvalidInput(f"score {score}/{out_of} is not on the 1-5 scale")
    return ([score for score, _ in found], _reason_line(text)) if found else None


def _from_fraction(text: str) -> tuple[list[Any], str] | None:
    scores = _FRACTION.findall(text)
    return (scores, _reason_line(text)) if scores else None


def _from_bare(text: str) -> tuple[list[Any], str] | None:
    match = _BARE.fullmatch(text)
    return ([match.group(1)], "") if match else None


def _reason_line(text: str) -> str:
    match = _REASON_LINE.search(text)
    return match.group(1) if match else ""


def _fallback_reason(text: str) -> str:
    """With no reason given apart, the judge's own words are the reason."""
    return "" if _BARE.fullmatch(text) else text


def _one_score(values: list[Any], scale: tuple[int, int]) -> int:
    scores = [_whole_number(v) for v in values]
    distinct = sorted(set(scores))
    if len(distinct) > 1:
        raise InvalidInput(f"the judge's answer holds different scores: {distinct}")
    low, high = scale
    if not low <= distinct[0] <= high:
        raise InvalidInput(f"score {distinct[0]} is outside the {low}-{high} scale")
    return distinct[0]


def _whole_number(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"the judge's score is {value!r}, not a number")
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"the judge's score is {value!r}, not a number") from None
    if not number.is_integer():
        raise InvalidInput(f"score {value} is not a whole number on the 1-5 scale")
    return int(number)


def _excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


# -- the judge --------------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 text, no NaN."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"judge inputs must be plain JSON values: {exc}") from None


def cache_key(
    model: str,
    prompt_id: str,
    prompt_version: int,
    inputs: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
) -> str:
    """sha256 (hex) over the judge model, prompt id and version, parameters and inputs.

    The parameters are part of the key because they change the answer (a cached answer at
    temperature 0 is not the answer at temperature 1).
    """
    payload = {
        "model": model,
        "prompt": {"id": prompt_id, "version": prompt_version},
        "params": dict(params or {}),
        "inputs": dict(inputs),
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class JudgeResult:
    """One row's judgment: score and pass/fail label, or the error that stands in for them.

    ``raw`` is the judge's answer as received (None when the call failed); ``cached`` says it
    was read from the cache; ``key`` is its cache key.
    """

    evaluator: str
    score: int | None
    label: str | None
    reason: str
    raw: str | None
    error: str | None
    threshold: int
    cached: bool
    key: str

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (a row of an evaluation table)."""
        return asdict(self)


class Judge:
    """An LLM judge: one prompt, one ``chat`` callable, the model it calls, an optional cache.

    ``model`` names the judge model that ``chat`` talks to; it is not sent (``chat`` is already
    bound to it) but it is part of the cache key, so answers of two judge models never mix.
    ``params`` are sent with each call, over the prompt's own (temperature 0 by default).
    """

    def __init__(
        self,
        prompt: JudgePrompt,
        chat: Chat,
        *,
        model: str,
        threshold: int = DEFAULT_THRESHOLD,
        cache: JudgeCache | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        low, high = SCALE
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise InvalidInput(f"threshold must be a whole number, not {threshold!r}")
        if not low <= threshold <= high:
            raise InvalidInput(f"threshold {threshold} is outside the {low}-{high} scale")
        if not model:
            raise InvalidInput("a judge needs the id of its model (model=...)")
        self.prompt = prompt
        self.chat = chat
        self.model = model
        self.threshold = threshold
        self.cache = cache
        self.params = {**prompt.params, **(params or {})}

    def key(self, inputs: Mapping[str, Any]) -> str:
        """The cache key of one row of ``inputs``."""
        return cache_key(self.model, self.prompt.id, self.prompt.version, inputs, self.params)

    def evaluate(self, inputs: Mapping[str, Any]) -> JudgeResult:
        """Judge one row; a failed call or an unreadable answer is an error on the result."""
        messages = self.prompt.messages(inputs)  # a bad row is the caller's mistake: raise
        key = self.key(inputs)
        raw = self.cache.get(key) if self.cache is not None else None
        cached = raw is not None
        if raw is None:
            try:
                raw = self.chat(messages, **self.params)
            except Exception as exc:  # recorded on the row, which fails alone; never cached
                return self._result(None, "", None, f"judge call failed: {_describe(exc)}", key)
            if not isinstance(raw, str):
                return self._result(
                    None, "", None, f"chat returned {type(raw).__name__}, not text", key
                )
            if self.cache is not None:
                self.cache.put(key, raw)
        try:
            judgment = parse_judgment(raw)
        except InvalidInput as exc:
            return self._result(None, "", raw, exc.message, key, cached)
        return self._result(judgment.score, judgment.reason, raw, None, key, cached)

    def evaluate_batch(
        self, rows: Iterable[Mapping[str, Any]], *, concurrency: int = 1
    ) -> list[JudgeResult]:
        """Judge every row, up to ``concurrency`` calls at a time; results in row order."""
        rows = list(rows)
        for row in rows:  # every row's inputs checked before the first call is paid for
            self.prompt.messages(row)
        if concurrency <= 1 or len(rows) <= 1:
            return [self.evaluate(row) for row in rows]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(self.evaluate, rows))

    def _result(
        self,
        score: int | None,
        reason: str,
        raw: str | None,
        error: str | None,
        key: str,
        cached: bool = False,
    ) -> JudgeResult:
        label = None if score is None else ("pass" if score >= self.threshold else "fail")
        return JudgeResult(
            evaluator=self.prompt.id,
            score=score,
            label=label,
            reason=reason,
            raw=raw,
            error=error,
            threshold=self.threshold,
            cached=cached,
            key=key,
        )


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
