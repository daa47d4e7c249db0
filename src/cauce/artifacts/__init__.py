"""Content-addressed artifact store over any fsspec filesystem.

A blob is stored once under ``<root>/sha256/<first two hex>/<sha256>``. Writes are atomic: on a
local filesystem the bytes go to a temporary file in the same folder, are flushed and renamed; on
an object store a PUT publishes the object whole. Every read is verified against the sha256 and
a mismatch raises :class:`~cauce.errors.IntegrityError` naming the file.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cauce.errors import BackendError, IntegrityError, InvalidInput, NotFound

CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """A stored artifact: its sha256, size in bytes, URI and media type."""

    sha256: str
    size: int
    uri: str
    media_type: str


def sha256_file(path: Path) -> tuple[str, int]:
    """The sha256 and size of a local file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_sha256(sha256: str) -> str:
    """``sha256`` itself when it is a lowercase hex sha256 digest; InvalidInput otherwise."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput(f"not a sha256 digest: {sha256!r}")
    return sha256


def media_type_of(name: str) -> str:
    """A best guess of the media type from a file name."""
    kind, _ = mimetypes.guess_type(name)
    if kind:
        return kind
    suffix = Path(name).suffix.lower()
    return {
        ".parquet": "application/vnd.apache.parquet",
        ".yaml": "application/yaml",
        ".yml": "application/yaml",
        ".skops": "application/vnd.skops",
        ".onnx": "application/onnx",
        ".npy": "application/x-npy",
    }.get(suffix, "application/octet-stream")


class ArtifactStore:
    """Blobs addressed by sha256 under one fsspec URL."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise BackendError(
                f"cannot open artifact store {url}: {exc}",
                hint="install the filesystem's extra, e.g. pip install 'cauce[s3]'",
            ) from None
        self.root = self.root.rstrip("/")
        self.is_local = "file" in _protocols(self.fs)

    def path_of(self, sha256: str) -> str:
        """The filesystem path of a blob."""
        check_sha256(sha256)
        return f"{self.root}/sha256/{sha256[:2]}/{sha256}"

    def uri_of(self, sha256: str) -> str:
        """The URI of a blob, with the store's protocol."""
        path = self.path_of(sha256)
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return bool(self._call(self.fs.exists, self.path_of(sha256)))

    def put_file(self, local: Path | str, *, media_type: str | None = None) -> Blob:
        """Store a local file; storing the same content twice writes it once."""
        local = Path(local)
        if not local.is_file():
            raise NotFound(f"no such file: {local}")
        sha, size = sha256_file(local)
        blob = Blob(sha, size, self.uri_of(sha), media_type or media_type_of(local.name))
        target = self.path_of(sha)
        if self._call(self.fs.exists, target):
            return blob
        try:
            if self.is_local:
                self._call(self._write_local, target, local)
            else:
                self._call(self.fs.put_file, str(local), target)
        except FileNotFoundError as exc:
            # Raised by the backend itself (a missing bucket, a vanished folder): not the
            # caller's missing file, which was checked above.
            raise BackendError(f"artifact store {self.url} failed: {exc}") from exc
        return blob

    def put_bytes(self, data: bytes, *, media_type: str = "application/octet-stream") -> Blob:
        """Store bytes; storing the same bytes twice writes them once."""
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            return self.put_file(tmp.name, media_type=media_type)
        finally:
            os.unlink(tmp.name)

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's content, verified against its sha256."""
        path = self.path_of(sha256)
        try:
            data: bytes = self._call(self.fs.cat_file, path)
        except FileNotFoundError:
            raise NotFound(f"artifact {sha256} is missing from {self.url}") from None
        self._verify(path, hashlib.sha256(data).hexdigest(), sha256)
        return data

    def get_file(self, sha256: str, local: Path | str) -> Path:
        """Copy the blob to a local file, verified; the file appears only once it is whole."""
        local = Path(local)
        path = self.path_of(sha256)
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(local)
        try:
            try:
                self._call(self.fs.get_file, path, tmp)
            except FileNotFoundError:
                raise NotFound(f"artifact {sha256} is missing from {self.url}") from None
            actual, _ = sha256_file(Path(tmp))
            self._verify(path, actual, sha256)
            os.replace(tmp, local)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return local

    def verify(self, sha256: str) -> None:
        """Hash the stored blob; raise IntegrityError when it does not match its sha256.

        For a reader that reads a local store's blob in place (at :meth:`path_of`) instead of
        copying it with :meth:`get_file`: it calls this, in a thread if it likes, and trusts
        what it read only once this returned.
        """
        path = self.path_of(sha256)
        digest = hashlib.sha256()
        try:
            with self._call(self.fs.open, path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)  # releases the GIL: hashing runs beside the reader
        except FileNotFoundError:
            raise NotFound(f"artifact {sha256} is missing from {self.url}") from None
        self._verify(path, digest.hexdigest(), sha256)

    def _verify(self, path: str, actual: str, expected: str) -> None:
        if actual != expected:
            raise IntegrityError(
                f"artifact file {path} is corrupted: its content hashes to {actual}, "
                f"expected {expected}",
                hint="the file was modified after it was written; restore it from a backup",
                details={"path": path, "expected": expected, "actual": actual},
            )

    def _write_local(self, target: str, source: Path) -> None:
        folder = Path(target).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(folder)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except (OSError, PermissionError) as exc:
            raise BackendError(f"artifact store {self.url} failed: {exc}") from exc


def _create_temp(local: Path) -> str:
    """A new empty file beside ``local``, created with the mode the umask gives new files.

    ``tempfile.mkstemp`` would create it 0600 and the downloaded file would keep that mode.
    """
    for _ in range(100):
        tmp = str(local.parent / f".{local.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"cannot create a temporary file beside {local}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
