"""The content-addressed ArtifactStore, on the local filesystem and on S3 (a local moto server).

Every test taking ``case`` runs twice: once against a folder, once against
``s3://cauce-test/<fresh prefix>``. Tampering goes around the store: the local file is rewritten
in place, the S3 object is overwritten with boto3.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cauce.artifacts import ArtifactStore, media_type_of
from cauce.errors import BackendError, IntegrityError, InvalidInput, NotFound

S3_BUCKET = "cauce-test"
CREDENTIALS = {"key": "testing", "secret": "testing"}


@dataclass
class Case:
    """A store plus direct access to what it wrote, around the store."""

    kind: str
    store: ArtifactStore
    keys: Callable[[], list[str]]  # every file/object under the store's root, relative
    overwrite: Callable[[str, bytes], None]  # replace the bytes of a blob directly
    delete: Callable[[str], None]  # remove a blob directly


def _local_case(root: Path) -> Case:
    store = ArtifactStore(str(root))

    def keys() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    def overwrite(sha: str, data: bytes) -> None:
        path = Path(store.path_of(sha))
        path.chmod(0o644)
        path.write_bytes(data)

    def delete(sha: str) -> None:
        Path(store.path_of(sha)).unlink()

    return Case("local", store, keys, overwrite, delete)


def _s3_case(endpoint: str, client: Any, prefix: str) -> Case:
    options = {"endpoint_url": endpoint, **CREDENTIALS}
    store = ArtifactStore(f"s3://{S3_BUCKET}/{prefix}/", storage_options=options)

    def key_of(sha: str) -> str:
        return store.path_of(sha).removeprefix(f"{S3_BUCKET}/")

    def keys() -> list[str]:
        found = client.list_objects_v2(Bucket=S3_BUCKET, Prefix=f"{prefix}/")
        return sorted(o["Key"].removeprefix(f"{prefix}/") for o in found.get("Contents", []))

    def overwrite(sha: str, data: bytes) -> None:
        client.put_object(Bucket=S3_BUCKET, Key=key_of(sha), Body=data)

    def delete(sha: str) -> None:
        client.delete_object(Bucket=S3_BUCKET, Key=key_of(sha))
        store.fs.invalidate_cache()  # s3fs remembers what exists

    return Case("s3", store, keys, overwrite, delete)


@pytest.fixture(params=["local", "s3"])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    if request.param == "local":
        return _local_case(tmp_path / "store")
    endpoint = request.getfixturevalue("s3_server")
    client = request.getfixturevalue("s3_client")
    prefix = request.getfixturevalue("s3_prefix")
    return _s3_case(endpoint, client, prefix)


def blob_key(sha: str) -> str:
    return f"sha256/{sha[:2]}/{sha}"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- storing ------------------------------------------------------------------------------------


def test_same_content_twice_is_one_object(case: Case, tmp_path: Path) -> None:
    data = b"the same bytes\n" * 100
    first = case.store.put_bytes(data)
    again = case.store.put_bytes(data)
    named = tmp_path / "copy.bin"
    named.write_bytes(data)
    from_file = case.store.put_file(named)

    assert first.sha256 == again.sha256 == from_file.sha256 == hashlib.sha256(data).hexdigest()
    assert first.size == from_file.size == len(data)
    assert first.uri == from_file.uri
    assert case.keys() == [blob_key(first.sha256)]  # one object, no temporary leftovers
    assert case.store.exists(first.sha256)


def test_blob_layout_and_uri(case: Case) -> None:
    blob = case.store.put_bytes(b"layout")
    sha = blob.sha256
    assert case.store.path_of(sha).endswith(f"/sha256/{sha[:2]}/{sha}")
    if case.kind == "local":
        assert blob.uri == case.store.path_of(sha)
        assert Path(blob.uri).is_file()
    else:
        assert blob.uri.startswith(f"s3://{S3_BUCKET}/")
        assert blob.uri.endswith(f"/{blob_key(sha)}")


def test_distinct_contents_are_distinct_blobs(case: Case) -> None:
    a = case.store.put_bytes(b"a")
    b = case.store.put_bytes(b"b")
    assert a.sha256 != b.sha256
    assert case.keys() == sorted([blob_key(a.sha256), blob_key(b.sha256)])


def test_empty_content(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"")
    assert blob.size == 0
    assert blob.sha256 == hashlib.sha256(b"").hexdigest()
    assert case.store.read_bytes(blob.sha256) == b""
    assert case.store.get_file(blob.sha256, tmp_path / "empty").read_bytes() == b""


def test_media_types(case: Case, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"onnx")
    assert case.store.put_file(model).media_type == "application/onnx"
    assert case.store.put_file(model, media_type="x/y").media_type == "x/y"
    assert case.store.put_bytes(b"raw").media_type == "application/octet-stream"
    assert media_type_of("t.parquet") == "application/vnd.apache.parquet"
    assert media_type_of("noext") == "application/octet-stream"


def test_put_missing_file_is_not_found(case: Case, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        case.store.put_file(tmp_path / "absent.bin")
    with pytest.raises(NotFound):
        case.store.put_file(tmp_path)  # a folder is not a file
    assert case.keys() == []


# -- reading ------------------------------------------------------------------------------------


def test_read_back_equals(case: Case, tmp_path: Path) -> None:
    data = os.urandom(2 * (1 << 20) + 123)  # more than one read chunk
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    blob = case.store.put_file(source)

    assert case.store.read_bytes(blob.sha256) == data
    out = case.store.get_file(blob.sha256, tmp_path / "out" / "big.bin")
    assert out == tmp_path / "out" / "big.bin"
    assert out.read_bytes() == data


def test_get_file_creates_parents_and_leaves_no_temp(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"payload")
    dst = tmp_path / "a" / "b" / "c.txt"
    case.store.get_file(blob.sha256, dst)
    assert dst.read_bytes() == b"payload"
    assert files_in(dst.parent) == ["c.txt"]


def test_get_file_replaces_an_existing_destination(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"new")
    dst = tmp_path / "f.txt"
    dst.write_bytes(b"old content")
    case.store.get_file(blob.sha256, str(dst))  # a str destination is accepted too
    assert dst.read_bytes() == b"new"
    assert files_in(tmp_path) == ["f.txt"] + (["store"] if case.kind == "local" else [])


def test_downloaded_file_has_the_usual_mode(case: Case, tmp_path: Path) -> None:
    """Not the 0600 of a temporary file, nor the read-only mode of a local blob."""
    blob = case.store.put_bytes(b"mode")
    old = os.umask(0o022)
    try:
        dst = case.store.get_file(blob.sha256, tmp_path / "dl" / "m.bin")
    finally:
        os.umask(old)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o644


# -- integrity ----------------------------------------------------------------------------------


def test_tampered_blob_fails_read_bytes_naming_the_path(case: Case) -> None:
    blob = case.store.put_bytes(b"genuine")
    case.overwrite(blob.sha256, b"forged!")
    path = case.store.path_of(blob.sha256)

    with pytest.raises(IntegrityError) as caught:
        case.store.read_bytes(blob.sha256)
    assert path in str(caught.value)
    assert caught.value.details["path"] == path
    assert caught.value.details["expected"] == blob.sha256
    assert caught.value.details["actual"] == hashlib.sha256(b"forged!").hexdigest()
    assert caught.value.code == "integrity-error"


def test_tampered_blob_never_reaches_the_destination(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"genuine")
    case.overwrite(blob.sha256, b"forged")
    dst = tmp_path / "dl" / "file.bin"

    with pytest.raises(IntegrityError, match=case.store.path_of(blob.sha256)):
        case.store.get_file(blob.sha256, dst)
    assert not dst.exists()
    assert files_in(dst.parent) == []  # the temporary copy is gone too


def test_failed_verification_keeps_the_previous_destination(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"genuine")
    case.overwrite(blob.sha256, b"forged")
    dst = tmp_path / "dl" / "file.bin"
    dst.parent.mkdir()
    dst.write_bytes(b"previous")

    with pytest.raises(IntegrityError):
        case.store.get_file(blob.sha256, dst)
    assert dst.read_bytes() == b"previous"
    assert files_in(dst.parent) == ["file.bin"]


def test_truncated_blob_is_detected(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"0123456789")
    case.overwrite(blob.sha256, b"01234")
    with pytest.raises(IntegrityError):
        case.store.read_bytes(blob.sha256)
    with pytest.raises(IntegrityError):
        case.store.get_file(blob.sha256, tmp_path / "x")


def test_verify_passes_an_intact_blob_and_names_a_changed_one(case: Case) -> None:
    data = os.urandom(3 * (1 << 20) + 7)  # several read chunks
    blob = case.store.put_bytes(data)
    case.store.verify(blob.sha256)
    case.overwrite(blob.sha256, data[:-1] + b"!")
    with pytest.raises(IntegrityError) as caught:
        case.store.verify(blob.sha256)
    assert caught.value.details["path"] == case.store.path_of(blob.sha256)
    assert caught.value.details["actual"] == hashlib.sha256(data[:-1] + b"!").hexdigest()


def test_verify_of_a_missing_blob_is_not_found(case: Case) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(NotFound, match=sha):
        case.store.verify(sha)


# -- missing blobs and bad digests ------------------------------------------------------------


def test_missing_blob_is_not_found(case: Case, tmp_path: Path) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert not case.store.exists(sha)
    with pytest.raises(NotFound, match=sha):
        case.store.read_bytes(sha)
    dst = tmp_path / "dl" / "never.bin"
    with pytest.raises(NotFound, match=sha):
        case.store.get_file(sha, dst)
    assert not dst.exists()
    assert files_in(dst.parent) == []


def test_deleted_blob_is_not_found(case: Case, tmp_path: Path) -> None:
    blob = case.store.put_bytes(b"short-lived")
    assert case.store.exists(blob.sha256)
    case.delete(blob.sha256)
    assert not case.store.exists(blob.sha256)
    with pytest.raises(NotFound):
        case.store.read_bytes(blob.sha256)
    with pytest.raises(NotFound):
        case.store.get_file(blob.sha256, tmp_path / "gone")
    # Storing the content again brings the blob back.
    assert case.store.put_bytes(b"short-lived").sha256 == blob.sha256
    assert case.store.read_bytes(blob.sha256) == b"short-lived"


BAD_DIGESTS = [
    "",
    "abc",
    "A" * 64,  # upper case is not the canonical form
    "g" * 64,
    "0" * 63,
    "0" * 65,
    "../" + "0" * 61,
    "0" * 62 + "/x",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
def test_bad_digest_is_invalid_input(case: Case, tmp_path: Path, digest: str) -> None:
    with pytest.raises(InvalidInput, match="not a sha256 digest"):
        case.store.path_of(digest)
    with pytest.raises(InvalidInput):
        case.store.exists(digest)
    with pytest.raises(InvalidInput):
        case.store.read_bytes(digest)
    dst = tmp_path / "dl" / "x"
    with pytest.raises(InvalidInput):
        case.store.get_file(digest, dst)
    assert not dst.parent.exists()  # rejected before touching the destination


# -- backend failures ---------------------------------------------------------------------------


def test_unknown_protocol_is_backend_error() -> None:
    with pytest.raises(BackendError, match="cannot open artifact store"):
        ArtifactStore("nosuchprotocol://bucket/prefix")


def test_missing_bucket_is_backend_error(s3_server: str, s3_prefix: str) -> None:
    options = {"endpoint_url": s3_server, **CREDENTIALS}
    store = ArtifactStore(f"s3://no-such-bucket-{s3_prefix}/x", storage_options=options)
    with pytest.raises(BackendError, match="failed"):
        store.put_bytes(b"nowhere to go")


# -- local specifics ----------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> Case:
    return _local_case(tmp_path / "store")


def test_local_blobs_are_read_only(local: Case) -> None:
    blob = local.store.put_bytes(b"frozen")
    mode = stat.S_IMODE(Path(local.store.path_of(blob.sha256)).stat().st_mode)
    assert mode & 0o222 == 0
    assert mode & 0o444 == 0o444


def test_local_put_of_a_stored_blob_writes_nothing(
    local: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = local.store.put_bytes(b"once")

    def no_copy(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the blob was written again")

    monkeypatch.setattr(shutil, "copyfileobj", no_copy)
    assert local.store.put_bytes(b"once") == blob


@pytest.mark.parametrize(
    ("crash", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), BackendError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["disk-full", "interrupt"],
)
def test_local_crash_mid_write_leaves_nothing(
    local: Case,
    monkeypatch: pytest.MonkeyPatch,
    crash: BaseException,
    expected: type[BaseException],
) -> None:
    data = b"x" * 10_000
    sha = hashlib.sha256(data).hexdigest()
    real_copy = shutil.copyfileobj

    def half_then_crash(src: Any, dst: Any, length: int = 0) -> None:
        dst.write(src.read(len(data) // 2))
        dst.flush()
        folder = Path(local.store.path_of(sha)).parent
        assert next(folder.iterdir()).name.startswith(".tmp-")  # the write is under way
        raise crash

    monkeypatch.setattr(shutil, "copyfileobj", half_then_crash)
    with pytest.raises(expected):
        local.store.put_bytes(data)

    final = Path(local.store.path_of(sha))
    assert not final.exists()
    assert local.keys() == []  # no temporary file left beside it
    assert not local.store.exists(sha)
    with pytest.raises(NotFound):
        local.store.read_bytes(sha)

    monkeypatch.setattr(shutil, "copyfileobj", real_copy)
    assert local.store.put_bytes(data).sha256 == sha
    assert local.store.read_bytes(sha) == data
    assert local.keys() == [blob_key(sha)]


def test_local_store_accepts_a_file_url(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path}/store/")
    assert store.is_local
    blob = store.put_bytes(b"via url")
    assert blob.uri == str(tmp_path / "store" / blob_key(blob.sha256))
    assert store.read_bytes(blob.sha256) == b"via url"


def test_local_unusable_root_is_backend_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")  # the store's root would have to be a folder inside a file
    store = ArtifactStore(str(blocker / "store"))
    with pytest.raises(BackendError, match="failed"):
        store.put_bytes(b"nowhere to go")
