"""The remote side of the storage seam: operations and blobs over HTTP to ``cauce server``.

``ServerClient.call`` sends one operation (see :mod:`cauce.operations`) to its route and turns
the answer back into the function's return type, or the error body back into the same
``CauceError`` subclass the server raised. Calls are retried with backoff while the server
cannot be reached or answers 429, and, for idempotent operations, 502/503/504 as well; after
``retry_for`` seconds the last failure is raised as a BackendError naming the server.

``RemoteArtifactStore`` is the artifact store of a workspace on a server: blobs go up with a
``PUT`` (skipped when the server already holds the content) and come down verified against
their sha256, written to a temporary file that is renamed into place only once whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from cauce import errors
from cauce.artifacts import (
    CHUNK,
    ArtifactStore,
    Blob,
    check_sha256,
    media_type_of,
    sha256_file,
)
from cauce.errors import BackendError, CauceError, IntegrityError, NotFound, NotSupported

if TYPE_CHECKING:
    import httpx

    from cauce.operations import Operation

__all__ = ["RemoteArtifactStore", "ServerClient", "error_from_body"]

# Answers that say the request was not processed, so that sending it again is safe.
_NOT_PROCESSED = (429,)
_RETRY_IF_IDEMPOTENT = (502, 503, 504)
_JSON = {"Content-Type": "application/json"}


class ServerClient:
    """HTTP/1.1 keep-alive client of one Cauce server's workspace."""

    def __init__(
        self, url: str, *, token: str | None = None, timeout: float = 60.0, retry_for: float = 10.0
    ):
        import httpx

        self.url = url.rstrip("/")
        self.api = f"{self.url}/api/v1"
        # The server's home workspace, whichever one ``url`` addresses (``.../w/NAME``).
        self.home_api = re.sub(r"/w/[^/]+$", "", self.url) + "/api/v1"
        self.retry_for = retry_for
        headers = {"User-Agent": "cauce-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=5.0), follow_redirects=False
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def call(self, op: Operation, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """Run one operation on the server and return its result as the function would."""
        values = op.encode_args(args, kwargs)
        if op.method in ("GET", "DELETE"):
            # A query string has no types: check them here, where they are still known.
            op.decode_args(values, lenient=False)
        if op.paged:
            items: list[Any] = []
            token = None
            while True:
                page = self._send(op, {**values, "page_token": token} if token else values)
                items.extend(page["items"])
                token = page["next_page_token"]
                if not token:
                    return op.decode_result(items)
        answer = self._send(op, values)
        return None if answer is None else op.decode_result(answer)

    def _send(self, op: Operation, values: dict[str, Any]) -> Any:
        """One request for an operation; its JSON answer (None for 204)."""
        values = dict(values)
        path = op.path
        for name in op.path_params:
            path = path.replace("{" + name + "}", _segment(name, values.pop(name)))
        if op.method in ("GET", "DELETE"):
            query = [
                (name, _query_value(item))
                for name, value in values.items()
                for item in (value if isinstance(value, list) else [value])
                if item is not None
            ]
            response = self.request(op.method, path, idempotent=op.idempotent, params=query)
        else:
            # NaN and infinities are legal metric values: written as Python's json writes them.
            body = json.dumps(values, separators=(",", ":"), allow_nan=True)
            response = self.request(
                op.method, path, idempotent=op.idempotent, content=body, headers=_JSON
            )
        if response.status_code == 204 or op.returns is None:
            return None
        return response.json()

    def request(
        self, method: str, path: str, *, idempotent: bool, home: bool = False, **options: Any
    ) -> httpx.Response:
        """Send a request to ``/api/v1{path}``, retried as the module says; raise its error.

        ``home``: to the server's home workspace, whichever workspace this client addresses.
        """
        import httpx

        url = (self.home_api if home else self.api) + path
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            attempt += 1
            wait: float | None = None
            try:
                response = self.http.request(method, url, **options)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure: CauceError = _unreachable(self.url, exc)
            except httpx.TransportError as exc:
                failure = _unreachable(self.url, exc)
                if not idempotent:
                    raise failure from exc
            else:
                if response.status_code < 400:
                    return response
                failure = error_from_body(response)
                status = response.status_code
                if status not in _NOT_PROCESSED and not (
                    idempotent and status in _RETRY_IF_IDEMPOTENT
                ):
                    raise failure
                wait = getattr(failure, "retry_after", None)
            backoff = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2)
            wait = backoff if wait is None else max(wait, backoff)
            if time.monotonic() + wait > deadline:
                raise failure
            time.sleep(wait)


def _segment(name: str, value: Any) -> str:
    """A path parameter as one URL path segment: one that cannot be (empty, or with a path
    separator, which the server would read as two) is refused here, naming the field."""
    text = str(value)
    if not text or "/" in text:
        raise errors.InvalidInput(
            f"{name} {text!r} cannot be part of a URL path: it is empty or holds a '/'",
            details={"field": name},
        )
    return quote(text, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _unreachable(url: str, exc: Exception) -> BackendError:
    return BackendError(
        f"the Cauce server at {url} did not answer: {type(exc).__name__}: {exc}",
        hint="check that `cauce server` runs there, or unset CAUCE_SERVER_URL",
    )


def _error_classes() -> dict[str, type[CauceError]]:
    found: dict[str, type[CauceError]] = {}
    pending: list[type[CauceError]] = [CauceError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


_BY_STATUS: dict[int, type[CauceError]] = {
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: NotFound,
    409: errors.Conflict,
    422: errors.InvalidInput,
}


def error_from_body(response: httpx.Response) -> CauceError:
    """The CauceError an error answer carries (``{"error": {code, message, details}}``)."""
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
        details = dict(body.get("details") or {})
    except Exception:
        # A body-less answer (to HEAD, or from a proxy in front of the server).
        text = response.text[:200].strip() or response.reason_phrase
        kind = _BY_STATUS.get(response.status_code, BackendError)
        return kind(f"the Cauce server answered {response.status_code}: {text}")
    # An error raised with a code of its own (a Conflict coded ``schema-changed``) comes back
    # as the class its status stands for.
    cls = _error_classes().get(code) or _BY_STATUS.get(response.status_code, CauceError)
    error = cls.__new__(cls)
    CauceError.__init__(error, message, code=code, hint=details.pop("hint", None), details=details)
    if isinstance(error, errors.RateLimited):
        error.retry_after = float(response.headers.get("Retry-After") or 1.0)
    return error


class RemoteArtifactStore(ArtifactStore):
    """Blobs addressed by sha256, held by a Cauce server (``/api/v1/blobs/{sha256}``).

    The same methods as a local store, except that a blob has no path here to read in place.
    """

    is_local = False

    def __init__(self, server: ServerClient):
        self.server = server
        self.url = f"{server.api}/blobs"

    def path_of(self, sha256: str) -> str:
        """Not available: the blob lives on the server."""
        raise NotSupported(
            "a blob of a server's workspace has no path on this machine",
            hint="download it with get_file",
        )

    def verify(self, sha256: str) -> None:
        """Download the blob and check it against its sha256."""
        self.read_bytes(sha256)

    def uri_of(self, sha256: str) -> str:
        """The URL the blob is served at."""
        return f"{self.url}/{check_sha256(sha256)}"

    def exists(self, sha256: str) -> bool:
        """Whether the server holds the blob."""
        try:
            self.server.request("HEAD", f"/blobs/{check_sha256(sha256)}", idempotent=True)
        except NotFound:
            return False
        return True

    def put_file(self, local: Path | str, *, media_type: str | None = None) -> Blob:
        """Upload a local file unless the server holds its content already."""
        local = Path(local)
        if not local.is_file():
            raise NotFound(f"no such file: {local}")
        sha, size = sha256_file(local)
        blob = Blob(sha, size, self.uri_of(sha), media_type or media_type_of(local.name))
        if not self.exists(sha):
            with local.open("rb") as handle:
                self.server.request(
                    "PUT",
                    f"/blobs/{sha}",
                    idempotent=False,
                    content=_chunks(handle),
                    headers={"Content-Length": str(size), "Content-Type": blob.media_type},
                )
        return blob

    def put_bytes(self, data: bytes, *, media_type: str = "application/octet-stream") -> Blob:
        """Upload bytes unless the server holds them already."""
        sha = hashlib.sha256(data).hexdigest()
        blob = Blob(sha, len(data), self.uri_of(sha), media_type)
        if not self.exists(sha):
            self.server.request(
                "PUT", f"/blobs/{sha}", idempotent=True, content=data,
                headers={"Content-Type": media_type},
            )  # fmt: skip
        return blob

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's content, verified against its sha256."""
        # An S3-backed server answers with a redirect to a signed URL of the object itself.
        path = f"/blobs/{check_sha256(sha256)}"
        data = self.server.request("GET", path, idempotent=True, follow_redirects=True).content
        _verify(hashlib.sha256(data).hexdigest(), sha256)
        return data

    def get_file(self, sha256: str, local: Path | str) -> Path:
        """Download the blob to a local file, verified; the file appears only once whole."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local.parent, prefix=f".{local.name}.", suffix=".part")
        digest = hashlib.sha256()
        try:
            url = f"{self.url}/{check_sha256(sha256)}"
            with (
                os.fdopen(fd, "wb") as out,
                self.server.http.stream("GET", url, follow_redirects=True) as answer,
            ):
                if answer.status_code >= 400:
                    answer.read()
                    raise error_from_body(answer)
                for chunk in answer.iter_bytes(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            _verify(digest.hexdigest(), sha256)
            os.replace(tmp, local)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return local


def _chunks(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def _verify(actual: str, expected: str) -> None:
    if actual != expected:
        raise IntegrityError(
            f"artifact {expected} arrived corrupted: its content hashes to {actual}",
            details={"expected": expected, "actual": actual},
        )
