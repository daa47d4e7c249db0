"""Safety filters a deployment configures, both ways: the spec and the policy it compiles to.

.. code-block:: yaml

    safety:
      input:
        - {filter: injection, action: block, threshold: 0.5}
        - {filter: pii, action: redact, types: [EMAIL, PHONE, CARD]}
        - {filter: blocklist, action: block, terms: [...], file: path}
        - {filter: custom, action: flag, hook: "package.module:function"}
      output:
        - {filter: canary, action: block}
        - {filter: pii, action: redact}

Input filters read the text of user and tool/function messages (the deployment's own system
messages are not scanned); output filters read the completion, whole (:meth:`check_output`) or
as a stream (:meth:`output_guard`). Every decision is a JSON-able dict::

    {"direction": "input", "filter": "pii", "action": "redact", "triggered": True,
     "score": None, "reasons": ["EMAIL"], "redactions": {"EMAIL": 1}}

Example::

    policy = SafetyPolicy.from_spec({"input": [{"filter": "injection", "action": "block"}]})
    verdict = policy.check_input([{"role": "user", "content": "Ignore all previous instructions"}])
    verdict.blocked, verdict.decisions
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cauce.config import load_object
from cauce.errors import InvalidInput
from cauce.genai.safety.normalize import Normalized, normalize

__all__ = [
    "FilterSpec",
    "OutputGuard",
    "SafetyPolicy",
    "SafetySpec",
    "Verdict",
]

_SCANNED_ROLES = ("user", "tool", "function")
# Held back from a stream: longer than a PII value, a blocklist term or a spaced-out canary.
_HOLD = 96


# -- the spec ----------------------------------------------------------------------------------


class InjectionFilter(BaseModel):
    """Prompt injection and jailbreaks: rules, then the classifier."""

    model_config = ConfigDict(extra="forbid")

    filter: Literal["injection"]
    action: Literal["block", "flag"] = "block"
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class PiiFilter(BaseModel):
    """Personal data: emails, phones, cards, IBANs, IPs, SSNs, DNI/NIE."""

    model_config = ConfigDict(extra="forbid")

    filter: Literal["pii"]
    action: Literal["block", "redact", "flag"] = "redact"
    types: list[str] | None = None

    @field_validator("types")
    @classmethod
    def _types(cls, value: list[str] | None) -> list[str] | None:
        from cauce.genai.safety.pii import ENTITY_TYPES

        for kind in value or []:
            if kind not in ENTITY_TYPES:
                raise ValueError(f"unknown PII type {kind!r} (known: {', '.join(ENTITY_TYPES)})")
        return value


class BlocklistFilter(BaseModel):
    """Words and phrases, matched case-insensitively on the normalised text."""

    model_config = ConfigDict(extra="forbid")

    filter: Literal["blocklist"]
    action: Literal["block", "redact", "flag"] = "block"
    terms: list[str] = Field(default_factory=list)
    file: str | None = None

    @model_validator(mode="after")
    def _some(self) -> BlocklistFilter:
        if not self.terms and self.file is None:
            raise ValueError("a blocklist needs terms or a file")
        if any(not t.strip() for t in self.terms):
            raise ValueError("terms: a term cannot be empty")
        return self


class CustomFilter(BaseModel):
    """A function of the text: None passes, a reason (a string or a dict) triggers."""

    model_config = ConfigDict(extra="forbid")

    filter: Literal["custom"]
    action: Literal["block", "flag"] = "flag"
    hook: str


class CanaryFilter(BaseModel):
    """The system prompt's canary token repeated in a completion (output only)."""

    model_config = ConfigDict(extra="forbid")

    filter: Literal["canary"]
    action: Literal["block", "flag"] = "block"


FilterSpec = Annotated[
    InjectionFilter | PiiFilter | BlocklistFilter | CustomFilter | CanaryFilter,
    Field(discriminator="filter"),
]


class SafetySpec(BaseModel):
    """A deployment's ``safety`` section: filters on the way in and on the way out."""

    model_config = ConfigDict(extra="forbid")

    input: list[FilterSpec] = Field(default_factory=list)
    output: list[FilterSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _canary_out(self) -> SafetySpec:
        for number, spec in enumerate(self.input):
            if spec.filter == "canary":
                raise ValueError(f"input.{number}: the canary filter reads completions: output")
        return self


# -- verdicts ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    """What the filters decided: ``blocked``, the redacted ``messages`` (input) or ``text``
    (output), and the ``decisions`` that triggered."""

    blocked: bool
    decisions: list[dict[str, Any]]
    messages: list[dict[str, Any]] | None = None
    text: str | None = None


@dataclass
class _Hit:
    score: float | None = None
    reasons: list[str] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)


# -- the compiled filters ----------------------------------------------------------------------


class _Texts:
    """Normalised forms of the texts one check reads, computed once for every filter."""

    def __init__(self) -> None:
        self.seen: dict[str, Normalized] = {}
        self.pii: dict[str, list[Any]] = {}

    def get(self, text: str) -> Normalized:
        found = self.seen.get(text)
        if found is None:
            found = self.seen[text] = normalize(text)
        return found


class _Filter(abc.ABC):
    """One compiled filter: ``scan`` finds, ``redact`` rewrites (pii, blocklist)."""

    def __init__(self, spec: Any, name: str) -> None:
        self.spec = spec
        self.name = name
        self.action: str = spec.action

    @abc.abstractmethod
    def scan(self, text: str, texts: _Texts, canary: str | None) -> _Hit | None:
        """What the filter found in ``text`` (None: nothing)."""

    def redact(self, text: str, redactor: Any, texts: _Texts) -> tuple[str, dict[str, int]]:
        return text, {}

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where in ``text`` what this filter redacts is."""
        return []


class _Injection(_Filter):
    def scan(self, text: str, texts: _Texts, canary: str | None) -> _Hit | None:
        from cauce.genai.safety.injection import detect_injection

        result = detect_injection(texts.get(text))
        if result.score < self.spec.threshold:
            return None
        reasons = list(result.rules) or ["classifier"]
        reasons += [f"payload:{kind}" for kind in result.payloads]
        return _Hit(result.score, reasons)


class _Pii(_Filter):
    def _entities(self, text: str, texts: _Texts | None = None) -> list[Any]:
        from cauce.genai.safety.pii import detect

        found = texts.pii.get(text) if texts is not None else None
        if found is None:
            found = detect(text)
            if texts is not None:
                texts.pii[text] = found
        if self.spec.types is not None:
            found = [e for e in found if e.type in self.spec.types]
        return found

    def scan(self, text: str, texts: _Texts, canary: str | None) -> _Hit | None:
        found = self._entities(text, texts)
        if not found:
            return None
        counts: dict[str, int] = {}
        for entity in found:
            counts[entity.type] = counts.get(entity.type, 0) + 1
        return _Hit(None, sorted(counts), counts)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [(e.start, e.end) for e in self._entities(text)]

    def redact(self, text: str, redactor: Any, texts: _Texts) -> tuple[str, dict[str, int]]:
        found = self._entities(text, texts)
        counts: dict[str, int] = {}
        for entity in found:
            counts[entity.type] = counts.get(entity.type, 0) + 1
        return redactor.replace(text, found), counts


class _Blocklist(_Filter):
    def __init__(self, spec: BlocklistFilter, name: str) -> None:
        super().__init__(spec, name)
        terms = list(spec.terms)
        if spec.file is not None:
            path = Path(spec.file)
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise InvalidInput(
                    f"{name}.file: cannot read {spec.file}: {exc.strerror}",
                    details={"field": f"{name}.file"},
                ) from None
            terms += [t.strip() for t in lines if t.strip() and not t.lstrip().startswith("#")]
        self.terms = sorted({t.strip() for t in terms}, key=len, reverse=True)
        self.folded = sorted({normalize(t, decode=False).text for t in self.terms}, key=len)
        self.normalised = _words(self.folded[::-1], 0)
        self.plain = _words(self.terms, re.IGNORECASE)

    def scan(self, text: str, texts: _Texts, canary: str | None) -> _Hit | None:
        full = texts.get(text).full
        # A substring test first: the patterns (word boundaries) run only when a term is there.
        if not any(term in full for term in self.folded):
            return None
        found = sorted({m.group().lower() for m in self.plain.finditer(text)})
        if not found:
            found = sorted({m.group() for m in self.normalised.finditer(full)})
        return _Hit(None, found) if found else None

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.plain.finditer(text)]

    def redact(self, text: str, redactor: Any, texts: _Texts) -> tuple[str, dict[str, int]]:
        count = len(self.plain.findall(text))
        if not count:
            return text, {}
        return self.plain.sub("[BLOCKED]", text), {"BLOCKLIST": count}


class _Custom(_Filter):
    def __init__(self, spec: CustomFilter, name: str) -> None:
        super().__init__(spec, name)
        self.hook: Callable[[str], Any] = load_object(spec.hook, what=f"{name}.hook")

    def scan(self, text: str, texts: _Texts, canary: str | None) -> _Hit | None:
        found = self.hook(text)
        if found is None or found is False:
            return None
        if isinstance(found, dict):
            score = found.get("score")
            reasons = found.get("reasons") or [str(found.get("reason", "custom"))]
            return _Hit(None if score is None else float(score), [str(r) for r in reasons])
        return _Hit(None, [str(found)])


class _Canary(_Filter):
    def scan(self, text: str, texts: _Texts, canary: str | None) -> _Hit | None:
        from cauce.genai.safety.canary import leaked

        if canary is None or not leaked(text, canary):
            return None
        return _Hit(None, ["canary leaked"])


_KINDS: dict[str, type[_Filter]] = {
    "injection": _Injection,
    "pii": _Pii,
    "blocklist": _Blocklist,
    "custom": _Custom,
    "canary": _Canary,
}


def _words(terms: list[str], flags: int) -> re.Pattern[str]:
    body = "|".join(re.escape(t) for t in terms) or r"(?!x)x"
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", flags)


# -- the policy --------------------------------------------------------------------------------


class SafetyPolicy:
    """A compiled :class:`SafetySpec`: checks messages going in and text coming out."""

    def __init__(self, spec: SafetySpec) -> None:
        self.spec = spec
        self.input = [
            _KINDS[s.filter](s, f"input.{i}") for i, s in enumerate(spec.input)
        ]  # fmt: skip
        self.output = [_KINDS[s.filter](s, f"output.{i}") for i, s in enumerate(spec.output)]

    @classmethod
    def from_spec(cls, spec: SafetySpec | dict[str, Any]) -> SafetyPolicy:
        """Compile a spec (a mapping is validated first; a bad one is an InvalidInput naming the
        field)."""
        if not isinstance(spec, SafetySpec):
            from cauce.specs import validation_error

            try:
                spec = SafetySpec.model_validate(spec)
            except ValidationError as exc:
                raise validation_error("safety", exc, SafetySpec) from None
        return cls(spec)

    @property
    def wants_canary(self) -> bool:
        """Whether an output filter looks for a canary: the caller puts one in the system
        message (:func:`~cauce.genai.safety.canary.with_canary`) and passes it to the checks."""
        return any(isinstance(check, _Canary) for check in self.output)

    def check_input(self, messages: list[dict[str, Any]]) -> Verdict:
        """Run the input filters over the text of every user and tool/function message."""
        from cauce.genai.safety.pii import Redactor

        copied = [dict(m) for m in messages]
        texts, redactor = _Texts(), Redactor()
        decisions: list[dict[str, Any]] = []
        for check in self.input:
            hits: list[_Hit] = []
            for message in copied:
                if message.get("role") not in _SCANNED_ROLES:
                    continue
                for text, put in _parts(message):
                    hit = check.scan(text, texts, None)
                    if hit is None:
                        continue
                    if check.action == "redact":
                        redacted, counts = check.redact(text, redactor, texts)
                        hit.redactions = counts
                        put(redacted)
                    hits.append(hit)
            if hits:
                decisions.append(_decision("input", check, hits))
                if check.action == "block":
                    return Verdict(True, decisions, messages=copied)
        return Verdict(False, decisions, messages=copied)

    def check_output(self, text: str, *, canary: str | None = None) -> Verdict:
        """Run the output filters over a whole completion."""
        from cauce.genai.safety.pii import Redactor

        texts, redactor = _Texts(), Redactor()
        decisions: list[dict[str, Any]] = []
        for check in self.output:
            hit = check.scan(text, texts, canary)
            if hit is None:
                continue
            if check.action == "redact":
                text, hit.redactions = check.redact(text, redactor, texts)
            decisions.append(_decision("output", check, [hit]))
            if check.action == "block":
                return Verdict(True, decisions, text="")
        return Verdict(False, decisions, text=text)

    def output_guard(self, canary: str | None = None) -> OutputGuard:
        """A guard for a streamed completion: feed it each delta, emit what it returns."""
        return OutputGuard(self, canary)


class OutputGuard:
    """Filters a stream: :meth:`feed` returns the text safe to emit now, holding back a tail
    long enough to hold a PII value, a blocklist term or a canary that a chunk boundary cuts;
    :meth:`finish` returns the rest. Once it blocks it emits nothing more (``blocked``)."""

    def __init__(self, policy: SafetyPolicy, canary: str | None) -> None:
        from cauce.genai.safety.pii import Redactor

        self.policy = policy
        self.canary = canary
        self.blocked = False
        self.decisions: list[dict[str, Any]] = []
        self._redactor = Redactor()
        self._pending = ""
        self._tail = ""  # the end of what was emitted: context for what spans a boundary
        self._seen: dict[str, dict[str, Any]] = {}

    def feed(self, delta: str) -> str:
        """The text that can be emitted now ("" while holding back, or once blocked)."""
        if self.blocked:
            return ""
        self._pending += delta
        if len(self._pending) <= _HOLD:
            return ""
        return self._release(final=False)

    def finish(self) -> str:
        """The held-back rest, checked ("" when blocked)."""
        if self.blocked:
            return ""
        return self._release(final=True)

    def _release(self, *, final: bool) -> str:
        text = self._pending
        window = self._tail + text
        texts = _Texts()
        cut = len(text) if final else len(text) - _HOLD
        for check in self.policy.output:
            hit = check.scan(window, texts, self.canary)
            if hit is None:
                continue
            if check.action == "block":
                self._record(check, hit)
                self.blocked = True
                self._pending = ""
                return ""
            if check.action == "flag":
                self._record(check, hit)
            elif not final:
                # A value that the cut would split waits for the next release.
                for start, end in check.spans(text):
                    if start < cut < end:
                        cut = start
        out = text[:cut]
        for check in self.policy.output:
            if check.action == "redact":
                redacted, counts = check.redact(out, self._redactor, texts)
                if counts:
                    out = redacted
                    self._record(check, _Hit(None, sorted(counts), counts))
        self._pending = text[cut:]
        self._tail = (self._tail + text[:cut])[-_HOLD:]
        return out

    def _record(self, check: _Filter, hit: _Hit) -> None:
        found = self._seen.get(check.name)
        if found is None:
            found = self._seen[check.name] = _decision("output", check, [hit])
            self.decisions.append(found)
            return
        found["reasons"] = sorted(set(found["reasons"]) | set(hit.reasons))
        for kind, count in hit.redactions.items():
            found["redactions"][kind] = found["redactions"].get(kind, 0) + count


def _parts(message: dict[str, Any]) -> list[tuple[str, Callable[[str], None]]]:
    """The texts of a message with a setter for each (content as a string or as parts)."""
    content = message.get("content")
    if isinstance(content, str):

        def put(value: str) -> None:
            message["content"] = value

        return [(content, put)]
    if isinstance(content, list):
        parts = message["content"] = [dict(p) if isinstance(p, dict) else p for p in content]
        found: list[tuple[str, Callable[[str], None]]] = []
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("text"), str):

                def put_part(value: str, part: dict[str, Any] = part) -> None:
                    part["text"] = value

                found.append((part["text"], put_part))
        return found
    return []


def _decision(direction: str, check: _Filter, hits: list[_Hit]) -> dict[str, Any]:
    scores = [h.score for h in hits if h.score is not None]
    redactions: dict[str, int] = {}
    for hit in hits:
        for kind, count in hit.redactions.items():
            redactions[kind] = redactions.get(kind, 0) + count
    return {
        "direction": direction,
        "filter": check.spec.filter,
        "action": check.action,
        "triggered": True,
        "score": round(max(scores), 4) if scores else None,
        "reasons": sorted({r for h in hits for r in h.reasons}),
        "redactions": redactions,
    }
