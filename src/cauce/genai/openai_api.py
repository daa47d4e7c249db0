"""OpenAI's HTTP API as Cauce speaks it: requests checked, answers and errors in its shapes.

Both Cauce's GenAI endpoints and the local LLM server read requests with :func:`chat_request`
and :func:`embeddings_request`, so a malformed one gets the same 400 everywhere: OpenAI's error
body ``{"error": {"message", "type", "param", "code"}}`` with ``param`` naming the field
(``messages[2].role``). Streams are server-sent events of ``chat.completion.chunk`` objects
ending ``data: [DONE]``.

Cauce's streams also carry SSE comments, which every SSE client skips: ``: usage P C`` before
each event (the prompt and completion tokens counted up to that event, ``-`` where not known),
and a last ``: cauce {...}`` with what the deployment knows about the whole answer (usage, cost,
finish reason, safety decisions, trace id). They let the router account for a stream exactly,
up to the point where a client abandons it, without parsing a single chunk.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cauce.errors import BadRequest, CauceError, InvalidInput, RateLimited
from cauce.validation import load_json

__all__ = [
    "ChatRequest",
    "EmbeddingsRequest",
    "Summary",
    "chat_request",
    "completion",
    "embeddings_request",
    "error_body",
    "message_text",
]

DONE = b"data: [DONE]\n\n"
_M = TypeVar("_M", bound="BaseModel")
USAGE_COMMENT = b": usage "
SUMMARY_COMMENT = b": cauce "
OPENAI_TEMPERATURE = 1.0  # what OpenAI samples with when a request names no temperature


# -- requests ---------------------------------------------------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionCall(_Open):
    """A function an assistant message called, with its arguments as JSON text."""

    name: str = Field(min_length=1)
    arguments: str


class ToolCall(_Open):
    """One tool call of an assistant message."""

    id: str = Field(min_length=1)
    type: Literal["function"]
    function: FunctionCall


class ContentPart(_Open):
    """One part of a message's content; only text is read as text."""

    type: Literal["text", "image_url", "input_audio", "file", "refusal"]
    text: str | None = None

    @model_validator(mode="after")
    def _text(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs text")
        return self


class Message(_Open):
    """A chat message, as OpenAI's API takes it."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        if self.role == "assistant":
            if self.content is None and not self.tool_calls:
                raise ValueError("an assistant message needs content or tool_calls")
        elif self.content is None:
            raise ValueError(f"a {self.role} message needs content")
        elif self.tool_calls:
            raise ValueError("only assistant messages carry tool_calls")
        return self


class FunctionDefinition(_Open):
    """A function a tool offers."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Open):
    """A tool the model may call."""

    type: Literal["function"]
    function: FunctionDefinition


class StreamOptions(_Open):
    """``stream_options``: with ``include_usage`` a last chunk carries the usage."""

    include_usage: bool = False


class ChatRequest(_Open):
    """A chat completion request; fields not read here travel on to OpenAI-compatible servers."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    @field_validator("stream_options")
    @classmethod
    def _stream_options(cls, value: StreamOptions | None, info: ValidationInfo) -> Any:
        if value is not None and not info.data.get("stream"):
            raise ValueError("stream_options is only allowed with stream: true")
        return value

    @property
    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)

    def limit(self) -> int | None:
        """The most tokens the answer may take."""
        return self.max_completion_tokens or self.max_tokens

    def dicts(self) -> list[dict[str, Any]]:
        """The messages as plain dicts, as sent."""
        return [m.model_dump(exclude_none=True) for m in self.messages]


class EmbeddingsRequest(_Open):
    """An embeddings request: text, or a list of texts."""

    model: str = Field(min_length=1)
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    @property
    def texts(self) -> list[str]:
        """The texts to embed, in order."""
        return [self.input] if isinstance(self.input, str) else list(self.input)


def chat_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A checked chat request; BadRequest names the first field that is wrong."""
    return _parse(ChatRequest, body)


def embeddings_request(body: bytes | dict[str, Any]) -> EmbeddingsRequest:
    """A checked embeddings request; BadRequest names the first field that is wrong."""
    return _parse(EmbeddingsRequest, body)


def _parse(model: type[_M], body: bytes | dict[str, Any]) -> _M:
    value = json_object(body) if isinstance(body, bytes) else body
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        # The deepest error names the field best (a union reports each branch it tried).
        first = max(exc.errors(), key=lambda e: len(e.get("loc", ())))
        param = _param(first.get("loc", ()))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise BadRequest(
            f"{param}: {message}" if param else message, details={"field": param}
        ) from None


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object; BadRequest otherwise."""
    value = load_json(body)
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object", details={"field": "body"})
    return value


def _param(loc: tuple[Any, ...]) -> str | None:
    """``("messages", 2, "role")`` → ``messages[2].role``; the union branches pydantic names
    in a location (``str``, ``list[ContentPart]``, ``function-after[...]``) are left out."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
        elif item not in _TYPE_TAGS and not any(c in item for c in "[(") and item[:1].islower():
            parts.append(item)
    return ".".join(parts) or None


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


def message_text(message: dict[str, Any] | Message) -> str:
    """A message's text: its content, or the text of its text parts."""
    content = message.content if isinstance(message, Message) else message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        text = part.text if isinstance(part, ContentPart) else part.get("text")
        if text:
            texts.append(text)
    return "\n".join(texts)


# -- answers ----------------------------------------------------------------------------------


def completion_id() -> str:
    """A new ``chatcmpl-…`` id."""
    return f"chatcmpl-{secrets.token_hex(12)}"


def usage_object(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """OpenAI's ``usage``."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def completion(
    *,
    id: str,
    model: str,
    text: str,
    finish_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    created: int | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object with one choice."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage_object(prompt_tokens, completion_tokens),
    }


@dataclass
class ChunkWriter:
    """Server-sent events of one streamed answer."""

    id: str
    model: str
    include_usage: bool
    created: int = 0

    def __post_init__(self) -> None:
        self.created = self.created or int(time.time())

    def event(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        progress: tuple[int | None, int | None] | None = None,
    ) -> bytes:
        """One ``chat.completion.chunk`` event, after its ``: usage`` comment."""
        return self._event(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            None,
            progress,
        )

    def usage_event(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The last chunk of an answer asked with ``include_usage``: no choices, the usage."""
        return self._event([], usage_object(prompt_tokens, completion_tokens), None)

    def _event(
        self,
        choices: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        progress: tuple[int | None, int | None] | None,
    ) -> bytes:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:
            body["usage"] = usage
        head = usage_comment(*progress) if progress is not None else b""
        return head + b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


def usage_comment(prompt_tokens: int | None, completion_tokens: int | None) -> bytes:
    """``: usage P C``: the tokens counted up to the event it precedes."""
    p = "-" if prompt_tokens is None else str(prompt_tokens)
    c = "-" if completion_tokens is None else str(completion_tokens)
    return USAGE_COMMENT + f"{p} {c}\n".encode()


def error_event(error: CauceError) -> bytes:
    """The last event of a stream that broke off: an error in OpenAI's shape."""
    return b"data: " + json.dumps(error_body(error)[1]).encode() + b"\n\n"


# The session the traces of a request belong to: a header the caller sends, forwarded to
# the deployment that answers.
SESSION_HEADER = b"cauce-session"
# The trace of an answer, sent back to the caller (feedback on the answer names it).
TRACE_HEADER = b"cauce-trace-id"
# Sent with a mirrored copy: its answer is nobody's, so its trace is in no session or user's.
MIRROR_HEADER = b"cauce-mirror"


def session_of(raw: bytes | None) -> str | None:
    """The session a ``cauce-session`` header names: none when it is absent or empty; longer
    than a trace keeps, a BadRequest naming the header."""
    from cauce.genai.tracing.attributes import MAX_ID

    session = (raw or b"").decode("latin-1").strip() or None
    if session is not None and len(session) > MAX_ID:
        raise BadRequest(
            f"the {SESSION_HEADER.decode()} header: at most {MAX_ID} characters, "
            f"not {len(session)}",
            details={"field": SESSION_HEADER.decode()},
        )
    return session


def user_of(value: Any) -> str | None:
    """OpenAI's ``user`` field as a trace keeps it: text cut to its longest; else none."""
    from cauce.genai.tracing.attributes import MAX_ID

    return value[:MAX_ID] or None if isinstance(value, str) else None


@dataclass
class Summary:
    """What a deployment knows about a whole answer, sent as ``: cauce {...}`` (streams) or
    the ``cauce-summary`` header (whole answers)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    finish_reason: str | None = None
    model: str | None = None
    trace_id: str | None = None
    usage_estimated: bool = False
    safety: list[dict[str, Any]] | None = None
    contexts: list[str] | None = None
    error: str | None = None  # the error a stream ended with, instead of its answer

    def encode(self) -> bytes:
        """The JSON text, on one line."""
        return json.dumps(
            {k: v for k, v in self.__dict__.items() if v is not None and v is not False},
            ensure_ascii=True,
            separators=(",", ":"),
        ).encode()

    def comment(self) -> bytes:
        """``: cauce {...}``, an SSE comment."""
        return SUMMARY_COMMENT + self.encode() + b"\n\n"

    @classmethod
    def decode(cls, raw: bytes | None) -> Summary | None:
        """The summary in ``raw``, or None when there is none or it cannot be read."""
        if not raw:
            return None
        try:
            value = json.loads(raw)
            return cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return None


def _summary_line(data: bytes) -> tuple[int, int] | None:
    """Where the JSON of a stream's last ``: cauce`` line starts and ends, if it is whole."""
    at = data.rfind(b"\n" + SUMMARY_COMMENT) + 1  # 0: none after a line's end
    if at == 0 and not data.startswith(SUMMARY_COMMENT):
        return None
    start = at + len(SUMMARY_COMMENT)
    end = data.find(b"\n", start)
    return (start, end) if end >= 0 else None


def stream_summary(data: bytes) -> Summary | None:
    """The ``: cauce`` summary of a stream's bytes, if it got that far."""
    line = _summary_line(data)
    return Summary.decode(data[line[0] : line[1]]) if line is not None else None


def for_caller(data: bytes) -> bytes:
    """A stream's bytes as its caller gets them: the ``: cauce`` summary without the retrieved
    contexts, which are the collector's (a whole answer's summary header never leaves the
    router at all)."""
    line = _summary_line(data)
    summary = Summary.decode(data[line[0] : line[1]]) if line is not None else None
    if line is None or summary is None or summary.contexts is None:
        return data
    summary.contexts = None
    return data[: line[0]] + summary.encode() + data[line[1] :]


def stream_progress(data: bytes) -> tuple[int | None, int | None] | None:
    """The last ``: usage P C`` comment of a stream's bytes."""
    at = data.rfind(USAGE_COMMENT)
    if at < 0 or (at > 0 and data[at - 1 : at] != b"\n"):
        return None
    end = data.find(b"\n", at)
    parts = data[at + len(USAGE_COMMENT) : end if end >= 0 else None].split()
    if len(parts) != 2:
        return None
    return _count(parts[0]), _count(parts[1])


def _count(raw: bytes) -> int | None:
    return int(raw) if raw.isdigit() else None


# -- errors -----------------------------------------------------------------------------------

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(error: CauceError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI's error body for ``error``.

    Requests Cauce cannot read are 400s, as OpenAI answers them (Cauce's own API says 422).
    """
    status = error.http_status
    if isinstance(error, InvalidInput) and status == 422:
        status = 400
    kind = _TYPES.get(status, "server_error")
    code = error.details.get("code") or error.code.replace("-", "_")
    if isinstance(error, RateLimited):
        kind = "insufficient_quota" if code == "insufficient_quota" else "rate_limit_error"
    param = error.details.get("field")
    return status, {
        "error": {
            "message": str(error),
            "type": kind,
            "param": param if isinstance(param, str) else None,
            "code": code,
        }
    }


def openapi_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenAI's routes as Cauce answers them, for an OpenAPI 3.1 document: the paths, and the
    schemas they refer to (``#/components/schemas/...``)."""
    template = "#/components/schemas/{model}"
    schemas: dict[str, Any] = {}
    refs = {}
    for model in (ChatRequest, EmbeddingsRequest):
        schema = model.model_json_schema(ref_template=template)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        refs[model.__name__] = {"$ref": template.format(model=model.__name__)}
    schemas["OpenAIError"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"]},
                },
            }
        },
    }
    error = {
        "content": {"application/json": {"schema": {"$ref": template.format(model="OpenAIError")}}}
    }
    errors = {
        str(code): {"description": why, **error}
        for code, why in (
            (400, "a request that cannot be answered"),
            (401, "no valid API key"),
            (404, "no such model"),
            (413, "the body is over the size limit"),
            (429, "over a rate limit or budget"),
            (502, "the upstream failed"),
            (503, "no deployment can answer"),
            (504, "no answer in time"),
        )
    }
    model_id = [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]
    paths = {
        "/v1/chat/completions": {
            "post": {
                "summary": "Chat completion (OpenAI), whole or streamed",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs["ChatRequest"]}},
                },
                "responses": {
                    "200": {
                        "description": "the answer, or its server-sent events",
                        "content": {"application/json": {}, "text/event-stream": {}},
                    },
                    **errors,
                },
            }
        },
        "/v1/embeddings": {
            "post": {
                "summary": "Embeddings (OpenAI)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs["EmbeddingsRequest"]}},
                },
                "responses": {"200": {"description": "the vectors"}, **errors},
            }
        },
        "/v1/models": {"get": {"summary": "Models", "responses": {"200": {"description": "list"}}}},
        "/v1/models/{model}": {
            "get": {
                "summary": "One model",
                "parameters": model_id,
                "responses": {"200": {"description": "the model"}, **errors},
            }
        },
    }
    return paths, schemas
