"""Shared fixtures: a fresh workspace per test, on SQLite, (marked ``postgres``) PostgreSQL, or
a ``cauce server`` (tests/remote.py). A folder whose tests run both ways makes ``workspace``
its ``seam_workspace`` and ``any_workspace`` its ``seam_any_workspace``.

PostgreSQL tests create a randomly named database on 127.0.0.1:5432 (user ``postgres``, trust
authentication) and drop it afterwards. Without a server they skip with the reason, except under
``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cauce import workspace as workspace_module
from cauce.workspace import Workspace
from optional import in_ci, missing, need
from remote import TestServer, server_side, start_server
from webhooks import hook  # noqa: F401  (the fixture, for every test module)

PG_ADMIN = os.environ.get("CAUCE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _pg_admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    dsn = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True, connect_timeout=3)


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        with _pg_admin_connect():
            return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL at {PG_ADMIN} is not reachable: {type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """Skip (or, under CI=true, fail) when PostgreSQL is not running."""
    reason = _pg_available()
    if reason is not None:
        missing(reason)
    return PG_ADMIN


@contextlib.contextmanager
def _pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template`` when given): its URL; dropped after."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    with _pg_admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
    finally:
        workspace_module.reset()
        with _pg_admin_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    with _pg_database("cauce_test") as url:
        yield url


@pytest.fixture(scope="session")
def pg_migrated(pg_server: str) -> Iterator[str]:
    """A PostgreSQL database migrated to the head revision once per test process: the stores
    of the ``postgres`` workspaces start as copies of it (a copy takes 0.16 s here, the
    migrations 0.6 s, in each of some 260 tests). Its name."""
    from sqlalchemy import create_engine

    from cauce.store.migrate import upgrade

    with _pg_database("cauce_template") as url:
        engine = create_engine(url)
        try:
            upgrade(engine, None)
        finally:
            engine.dispose()  # a template must have no connections when it is copied
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def pg_migrated_url(pg_migrated: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database at the head revision, dropped after the test."""
    with _pg_database("cauce_test", template=pg_migrated) as url:
        yield url


# The stores a local workspace is on: SQLite, then (marked ``postgres``) PostgreSQL.
STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _fresh(
    kind: str, request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace made current for the test: local on SQLite (``sqlite`` or ``local``),
    local on a new PostgreSQL database (``postgres``; migrated already, empty under the mark
    ``empty_store``, as a new SQLite store is until its first use), or new on the session's
    server (``remote``)."""
    for var in [v for v in os.environ if v.startswith("CAUCE_")]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CAUCE_HOME", str(home))
    monkeypatch.setenv("CAUCE_USER", "tester")
    if kind == "postgres":
        empty = request.node.get_closest_marker("empty_store") is not None
        url = request.getfixturevalue("pg_url" if empty else "pg_migrated_url")
        monkeypatch.setenv("CAUCE_DB_URL", url)
    elif kind == "remote":
        server: TestServer = request.getfixturevalue("cauce_server")
        monkeypatch.setenv("CAUCE_SERVER_URL", server.new_workspace())
    workspace_module.reset()
    try:
        yield workspace_module.current()
    finally:
        _end_active_runs()
        workspace_module.reset()


@pytest.fixture
def local_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh SQLite workspace, made current for the test."""
    yield from _fresh("sqlite", request, tmp_path / "ws", monkeypatch)


@pytest.fixture
def workspace(local_workspace: Workspace) -> Workspace:
    """A fresh SQLite workspace, made current for the test (remote too, where a folder's
    conftest says so: see ``seam_workspace``)."""
    return local_workspace


@pytest.fixture(scope="module")
def module_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A fresh SQLite workspace shared by one test module (its servers outlive a test), current."""
    home = tmp_path_factory.mktemp("ws")
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("CAUCE_")]:
            mp.delenv(var)
        mp.setenv("CAUCE_HOME", str(home))
        mp.setenv("CAUCE_USER", "tester")
        workspace_module.reset()
        try:
            yield workspace_module.current()
        finally:
            workspace_module.reset()


@pytest.fixture(params=STORES)
def store_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh local workspace on SQLite, then on PostgreSQL: for what runs on the store
    itself."""
    yield from _fresh(request.param, request, tmp_path / "ws", monkeypatch)


@pytest.fixture
def any_workspace(store_workspace: Workspace) -> Workspace:
    """A fresh workspace on SQLite, then on PostgreSQL: the store suite runs on both (remote
    too, where a folder's conftest says so: see ``seam_any_workspace``)."""
    return store_workspace


@pytest.fixture(scope="session")
def cauce_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServer]:
    """A ``cauce server`` on loopback for this session (see tests/remote.py)."""
    home = tmp_path_factory.mktemp("server")
    yield from start_server(home, home / "server.log")


@pytest.fixture(params=["local", "remote"])
def seam_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace, local and then on a ``cauce server``: the same test runs both ways."""
    yield from _fresh(request.param, request, tmp_path / "ws", monkeypatch)


@pytest.fixture(params=[*STORES, "remote"])
def seam_any_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on SQLite, on PostgreSQL, then on a ``cauce server``."""
    yield from _fresh(request.param, request, tmp_path / "ws", monkeypatch)


@pytest.fixture
def remote_workspace(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Workspace]:
    """A fresh workspace on the session's ``cauce server`` only: for what a server answers or
    refuses."""
    yield from _fresh("remote", request, tmp_path / "ws", monkeypatch)


def _end_active_runs() -> None:
    from cauce.tracking import fluent

    fluent._stack().clear()
    fluent._chosen.clear()
    fluent._local.__dict__.pop("last", None)


# -- S3 (moto) ---------------------------------------------------------------------------------

S3_BUCKET = "cauce-test"
S3_KEY = S3_SECRET = "testing"
S3_REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible server (moto) on 127.0.0.1 with bucket ``cauce-test``; its endpoint URL.

    Started once per session in this process and stopped afterwards; no real AWS is reached:
    credentials are fake and the AWS config files point at nothing.
    """
    need("s3fs", extra="s3")
    boto3 = need("boto3", extra="dev")
    server_module = need("moto.server", extra="dev")
    import logging

    quiet = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        # Session-wide, so that the s3fs clients that outlive one test see the same settings.
        mp.setenv("AWS_DEFAULT_REGION", S3_REGION)
        mp.setenv("AWS_CONFIG_FILE", str(quiet / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(quiet / "credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        werkzeug = logging.getLogger("werkzeug")
        level = werkzeug.level
        werkzeug.setLevel(logging.ERROR)  # one access-log line per request otherwise
        server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id=S3_KEY,
                aws_secret_access_key=S3_SECRET,
                region_name=S3_REGION,
            )
            client.create_bucket(Bucket=S3_BUCKET)
            yield endpoint
        finally:
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()
            werkzeug.setLevel(level)


@pytest.fixture
def s3_client(s3_server: str):  # type: ignore[no-untyped-def]
    """A boto3 client of the moto server, to look at (or tamper with) the bucket directly."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    )


@pytest.fixture
def s3_prefix(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh key prefix in the bucket for one test; AWS credentials and region in the env."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", S3_REGION)
    return f"t-{secrets.token_hex(6)}"


@pytest.fixture(params=["local", "s3"])
def artifacts_ws(
    request: pytest.FixtureRequest, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """The test's workspace with its artifacts in a local folder, then in a fresh S3 prefix.

    The S3 variant is configured as a user would: ``CAUCE_ARTIFACTS`` names the bucket,
    ``CAUCE_S3_ENDPOINT_URL`` the (moto) server, the credentials come from ``AWS_*`` variables.
    """
    if request.param == "local":
        assert workspace.remote or workspace.artifacts.is_local
        return workspace
    endpoint = request.getfixturevalue("s3_server")
    prefix = request.getfixturevalue("s3_prefix")  # also sets AWS_ACCESS_KEY_ID and friends
    monkeypatch.setenv("CAUCE_ARTIFACTS", f"s3://{S3_BUCKET}/{prefix}")
    monkeypatch.setenv("CAUCE_S3_ENDPOINT_URL", endpoint)
    workspace_module.reset()
    s3_ws = workspace_module.current()
    assert s3_ws.artifacts.url == f"s3://{S3_BUCKET}/{prefix}"
    assert not s3_ws.artifacts.is_local
    return s3_ws


@pytest.fixture
def overwrite_blob(
    artifacts_ws: Workspace, request: pytest.FixtureRequest
) -> Callable[[str, bytes], None]:
    """Replace the bytes of a blob of :func:`artifacts_ws` around the store, as a careless tool
    or an attacker would: the read-only local file rewritten, or the S3 object put again."""

    def overwrite(sha256: str, data: bytes) -> None:
        store = server_side(artifacts_ws).artifacts
        where = store.path_of(sha256)
        if store.is_local:
            Path(where).chmod(0o644)
            Path(where).write_bytes(data)
        else:
            client = request.getfixturevalue("s3_client")
            client.put_object(Bucket=S3_BUCKET, Key=where.removeprefix(f"{S3_BUCKET}/"), Body=data)

    return overwrite


# -- slow tests ---------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        help="run the tests marked slow too (a bare pytest deselects them; CI=true, make test, "
        "-m and named test paths run them)",
    )


def _runs_slow(config: pytest.Config) -> bool:
    """Slow tests are left out only of a bare ``pytest`` on a developer's machine."""
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    return in_ci() or config.getoption("--slow") or bool(config.getoption("-m")) or named


def _remote_s3(item: pytest.Item) -> bool:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("seam_workspace") == "remote" and params.get("artifacts_ws") == "s3"


def pytest_report_header(config: pytest.Config) -> str | None:
    if _runs_slow(config):
        return None
    return "slow tests deselected: a quick loop (make test, CI=true or --slow run them)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A remote workspace's artifact store is the server's: the S3 variant of artifacts_ws is
    # not the test's to choose, so that combination is not run.
    unfit = [item for item in items if _remote_s3(item)]
    if unfit:
        config.hook.pytest_deselected(items=unfit)
        items[:] = [item for item in items if not _remote_s3(item)]
    if _runs_slow(config):
        return
    slow = [item for item in items if "slow" in item.keywords]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if "slow" not in item.keywords]
