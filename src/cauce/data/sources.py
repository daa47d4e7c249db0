"""Where a dataset's table comes from: a DataFrame, a file or fsspec URL, or a SQL query.

Every kind is a small :class:`Source` with one method, ``read()``, and a ``description`` that is
stored with the version (a readable origin, never a password)::

    cauce.data.register("orders", "s3://bucket/orders.parquet")
    cauce.data.register("orders", cauce.data.sql("SELECT * FROM orders", url="postgresql+psycopg://…"))
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from cauce.errors import BackendError, InvalidInput, NotFound

if TYPE_CHECKING:
    import pandas as pd

# Seconds to wait for a database to answer before the registration fails.
SQL_CONNECT_TIMEOUT = 5
_MAX_QUERY_IN_DESCRIPTION = 500


class Source(ABC):
    """One kind of origin of a table."""

    description: str

    @abstractmethod
    def read(self) -> pd.DataFrame:
        """The whole table; raises a CauceError naming the cause when it cannot be read."""


class FrameSource(Source):
    """A pandas DataFrame already in memory."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.description = "dataframe"

    def read(self) -> pd.DataFrame:
        """The frame, with a plain 0..n-1 index (the index is not part of the table)."""
        return self.frame.reset_index(drop=True)


class FileSource(Source):
    """A CSV, TSV, Parquet, JSON or JSON Lines file: a local path or any fsspec URL.

    The format comes from the extension (``.gz``, ``.bz2``, ``.zst``… compression is undone
    first) unless ``format`` names it.
    """

    FORMATS: ClassVar[dict[str, str]] = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".json": "json",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
    }
    COMPRESSIONS: ClassVar[tuple[str, ...]] = (".gz", ".bz2", ".xz", ".zst", ".zip")

    def __init__(
        self,
        path: str | Path,
        *,
        format: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = str(path)
        self.storage_options = storage_options or {}
        self.format = format or self._format_of(self.path)
        if self.format not in set(self.FORMATS.values()):
            raise InvalidInput(
                f"unsupported data format {self.format!r}",
                hint=f"use one of {', '.join(sorted(set(self.FORMATS.values())))}",
            )
        self.description = redact_url(self.path)

    @classmethod
    def _format_of(cls, path: str) -> str:
        lower = urlsplit(path).path.lower() if "://" in path else path.lower()
        for compression in cls.COMPRESSIONS:
            lower = lower.removesuffix(compression)
        suffix = next((s for s in cls.FORMATS if lower.endswith(s)), None)
        if suffix is None:
            raise InvalidInput(
                f"cannot tell the format of {redact_url(path)}: unsupported extension "
                f"{Path(lower).suffix or '(none)'!r}",
                hint="use .csv, .tsv, .parquet, .json or .jsonl (optionally compressed)",
            )
        return cls.FORMATS[suffix]

    def read(self) -> pd.DataFrame:
        """Open the file through fsspec and parse it with pandas."""
        import fsspec

        shown = self.description
        try:
            opened = fsspec.open(self.path, "rb", compression="infer", **self.storage_options)
            with opened as handle:
                return self._parse(handle)
        except FileNotFoundError:
            raise NotFound(f"no such file: {shown}") from None
        except IsADirectoryError:
            raise InvalidInput(f"{shown} is a folder, not a file") from None
        except (ImportError, ValueError) as exc:
            if "protocol" in str(exc).lower():  # fsspec: unknown or uninstalled protocol
                raise InvalidInput(
                    f"cannot open {shown}: {exc}",
                    hint="install the filesystem's package, e.g. pip install s3fs",
                ) from None
            raise InvalidInput(f"cannot read {shown} as {self.format}: {_why(exc)}") from None
        except PermissionError as exc:
            raise BackendError(f"cannot read {shown}: {exc}") from None
        except Exception as exc:  # each parser has its own error types
            raise InvalidInput(f"cannot read {shown} as {self.format}: {_why(exc)}") from None

    def _parse(self, handle: Any) -> pd.DataFrame:
        import pandas as pd

        if self.format == "csv":
            return pd.read_csv(handle)
        if self.format == "tsv":
            return pd.read_csv(handle, sep="\t")
        if self.format == "parquet":
            return pd.read_parquet(handle)
        if self.format == "json":
            return pd.read_json(handle)
        return pd.read_json(handle, lines=True)


class SqlSource(Source):
    """The result of a SQL query against any SQLAlchemy URL."""

    def __init__(self, query: str, url: str, *, connect_timeout: int = SQL_CONNECT_TIMEOUT) -> None:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("a SQL source needs a non-empty query")
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            self._url = make_url(url)
        except ArgumentError:
            raise InvalidInput(
                "not a SQLAlchemy database URL",
                hint="write dialect+driver://user@host/db, e.g. postgresql+psycopg://…",
            ) from None
        self.query = query.strip()
        self.connect_timeout = connect_timeout
        shown = " ".join(self.query.split())
        if len(shown) > _MAX_QUERY_IN_DESCRIPTION:
            shown = shown[:_MAX_QUERY_IN_DESCRIPTION] + "…"
        self.url = redact_url(self._url.render_as_string(hide_password=True))
        self.description = f"sql: {shown} @ {self.url}"

    def read(self) -> pd.DataFrame:
        """Run the query and fetch every row."""
        import pandas as pd
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError

        try:
            engine = create_engine(self._url, connect_args=self._connect_args())
        except (NoSuchModuleError, ImportError) as exc:
            raise InvalidInput(
                f"cannot use database {self.url}: {exc}", hint="install the database driver"
            ) from None
        try:
            try:
                conn = engine.connect()
            except SQLAlchemyError as exc:
                raise BackendError(
                    f"cannot connect to database {self.url}: {_db_why(exc)}",
                    hint="check the URL and that the server is running",
                ) from None
            with conn:
                # The query is the user's SQL as written: ``:name`` is not a bind parameter
                # (a PostgreSQL ``::cast``, a time literal) and ``%`` is not a placeholder.
                literal = text(self.query.replace(":", "\\:"))
                try:
                    return pd.read_sql_query(literal, conn)
                except (pd.errors.DatabaseError, SQLAlchemyError) as exc:
                    # pandas wraps the driver's error; SQLAlchemy's is its cause.
                    cause = exc.__cause__ if isinstance(exc.__cause__, DBAPIError) else exc
                    raise InvalidInput(
                        f"SQL query failed on {self.url}: {_db_why(cause)}"
                    ) from None
        finally:
            engine.dispose()

    def _connect_args(self) -> dict[str, Any]:
        backend = self._url.get_backend_name()
        if backend in ("postgresql", "mysql", "mariadb"):
            return {"connect_timeout": self.connect_timeout}
        if backend == "sqlite":
            return {"timeout": self.connect_timeout}
        return {}


def sql(query: str, url: str, *, connect_timeout: int = SQL_CONNECT_TIMEOUT) -> SqlSource:
    """A SQL query against a SQLAlchemy URL, to pass to ``cauce.data.register``."""
    return SqlSource(query, url, connect_timeout=connect_timeout)


def as_source(value: Any) -> Source:
    """A Source from a Source, a DataFrame, a path or an fsspec URL."""
    if isinstance(value, Source):
        return value
    if isinstance(value, (str, Path)):
        if not str(value).strip():
            raise InvalidInput("a dataset source path must not be empty")
        return FileSource(value)
    if type(value).__name__ == "DataFrame":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return FrameSource(value)
    raise InvalidInput(
        f"a dataset source must be a DataFrame, a path, an fsspec URL or cauce.data.sql(...), "
        f"got {type(value).__name__}"
    )


_SECRET_PARAM = re.compile(r"(?i)(password|passwd|secret|token|key|sig|credential)")


def redact_url(value: str) -> str:
    """A path or URL with any password (user:password@, ?password=…) replaced by ***."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"{user}@{host}"
    query = "&".join(
        f"{k}=***" if _SECRET_PARAM.search(k) else f"{k}={v}" if sep else k
        for k, sep, v in (p.partition("=") for p in parts.query.split("&") if p)
    )
    # Replace in place: rebuilding with urlunsplit would turn sqlite:////abs/path into //abs.
    head, sep, rest = value.partition("://")
    if netloc != parts.netloc:
        rest = rest.replace(parts.netloc, netloc, 1)
    if query != parts.query:
        before, mark, after = rest.partition("?")
        rest = before + mark + after.replace(parts.query, query, 1)
    return head + sep + rest


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _db_why(exc: BaseException) -> str:
    """The driver's own message, first line, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    return _why(orig if orig is not None else exc)
