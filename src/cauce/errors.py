"""Cauce's one exception tree.

    CauceError                  every error Cauce raises on purpose
    ├── NotFound                an entity (run, model, version, artifact…) does not exist
    ├── AlreadyExists           a name that must be unique is taken
    ├── InvalidInput            a value the user passed is not acceptable
    │   ├── BadRequest          a request body that cannot be read at all (malformed, wrong shape)
    │   ├── UnsupportedMediaType  a request in a content type Cauce does not read
    │   └── PayloadTooLarge     a request body over the size limit
    ├── Conflict                the request clashes with the entity's state (immutable, active…)
    ├── QualityGateFailed       data or a model fell below its bar
    │   └── ValidationFailed    a dataset version failed its check suite (``result`` says how)
    ├── Unauthorized            no credentials, or credentials not (or no longer) valid
    ├── Forbidden               valid credentials whose role does not allow the operation
    ├── RateLimited             over a rate limit or a spent budget (``retry_after``)
    ├── NotSupported            an operation this workspace cannot do (local-only, via a server)
    ├── IntegrityError          stored content does not match its recorded hash
    ├── ModelError              a model raised while scoring input that fits its signature
    └── BackendError            a database, filesystem or other backend failed
        └── UpstreamTimeout     a deployment did not answer in time

Each error carries a user-facing ``message``, a stable kebab-case ``code`` and, where useful, a
``hint`` saying what to do. The CLI prints ``message`` (and ``hint``) on one line and exits
non-zero; the server maps ``http_status`` to the response.
"""

from __future__ import annotations

from typing import Any


class CauceError(Exception):
    """Base of every error Cauce raises on purpose."""

    code = "cauce-error"
    http_status = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint
        self.details = details or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        """The JSON body the server answers with."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class NotFound(CauceError):
    """An entity does not exist."""

    code = "not-found"
    http_status = 404


class AlreadyExists(CauceError):
    """A name that must be unique is already taken."""

    code = "already-exists"
    http_status = 409


class InvalidInput(CauceError):
    """A value passed by the user is not acceptable."""

    code = "invalid-input"
    http_status = 422


class BadRequest(InvalidInput):
    """A request body that cannot be read: malformed JSON, a missing or doubled key, bad shape."""

    code = "bad-request"
    http_status = 400


class UnsupportedMediaType(InvalidInput):
    """A request body in a content type (or charset) that Cauce does not read."""

    code = "unsupported-media-type"
    http_status = 415


class Conflict(CauceError):
    """The request clashes with the current state of an entity."""

    code = "conflict"
    http_status = 409


class QualityGateFailed(CauceError):
    """Data or a model fell below its quality bar."""

    code = "quality-gate-failed"
    http_status = 422


class ValidationFailed(QualityGateFailed):
    """A check suite failed; ``result`` (a ``cauce.data.checks.ValidationResult``) holds every
    check's verdict."""

    def __init__(self, result: Any) -> None:
        names = ", ".join(c.name for c in result.failures)
        super().__init__(
            f"dataset version {result.dataset} failed check suite {result.suite!r}: {names}",
            hint="fix the data or the suite; run cauce data validate to see failing rows",
            details={"result": result.to_dict()},
        )
        self.result = result


class IntegrityError(CauceError):
    """Stored content does not match its recorded sha256."""

    code = "integrity-error"
    http_status = 500


class ModelError(CauceError):
    """The model raised while scoring an input that matched its signature."""

    code = "model-error"
    http_status = 500


class Unauthorized(CauceError):
    """No credentials, or credentials that are not (or no longer) valid."""

    code = "unauthorized"
    http_status = 401


class Forbidden(CauceError):
    """Valid credentials whose role does not allow this operation."""

    code = "forbidden"
    http_status = 403


class RateLimited(CauceError):
    """Over a request or token rate limit, or a spent budget; ``retry_after`` seconds until
    a retry can succeed."""

    code = "rate-limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class NotSupported(CauceError):
    """An operation this workspace cannot do (a local-only operation through a server)."""

    code = "not-supported"
    http_status = 501


class BackendError(CauceError):
    """A database, filesystem or other backend failed."""

    code = "backend-error"
    http_status = 503


class PayloadTooLarge(InvalidInput):
    """A request body over the endpoint's size limit."""

    code = "payload-too-large"
    http_status = 413


class UpstreamTimeout(BackendError):
    """A deployment did not answer within the endpoint's timeout."""

    code = "upstream-timeout"
    http_status = 504


class LLMError(BackendError):
    """An LLM server behind a connection failed: down, slow, rate-limited, erroring or
    answering something that is not the OpenAI API, after the connection's retries."""

    code = "llm-error"
    http_status = 502
