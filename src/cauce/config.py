"""Workspace discovery and settings.

Every setting lives here, with its ``CAUCE_*`` environment variable and its key in
``cauce.yaml``. Precedence, highest first: the environment, ``cauce.yaml``, the default.

Discovery of the workspace root: ``CAUCE_HOME``, else the nearest directory upward from the
current one that holds a ``cauce.yaml``, else the current directory (its ``.cauce/`` is created
on first use).
"""

from __future__ import annotations

import getpass
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cauce.errors import InvalidInput

CONFIG_FILE = "cauce.yaml"
STATE_DIR = ".cauce"


@dataclass(frozen=True)
class Setting:
    """One configurable value: its name in ``cauce.yaml``, its variable, default and meaning."""

    name: str
    env: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "CAUCE_HOME", None, "Workspace root; overrides discovery of cauce.yaml."),
    Setting(
        "db_url",
        "CAUCE_DB_URL",
        None,
        "SQLAlchemy URL of the metadata store; default sqlite:///<root>/.cauce/cauce.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
    ),
    Setting(
        "artifacts",
        "CAUCE_ARTIFACTS",
        None,
        "fsspec URL of the artifact store (a folder, s3://bucket/prefix, ...); "
        "default <root>/.cauce/artifacts.",
    ),
    Setting(
        "sqlite_sync",
        "CAUCE_SQLITE_SYNC",
        "normal",
        "SQLite synchronous mode: 'normal' is durable against a crash of the process; "
        "'full' adds an fsync per commit for durability against power loss.",
    ),
    Setting(
        "busy_timeout_ms",
        "CAUCE_BUSY_TIMEOUT_MS",
        "60000",
        "How long a SQLite writer waits for another writer's lock before failing.",
    ),
    Setting(
        "user", "CAUCE_USER", None, "Who is recorded in runs and audit events; default the OS user."
    ),
    Setting(
        "experiment", "CAUCE_EXPERIMENT", "Default", "Experiment used when start_run names none."
    ),
    Setting(
        "s3_endpoint_url",
        "CAUCE_S3_ENDPOINT_URL",
        None,
        "Endpoint of an S3-compatible server (MinIO, moto...) for s3:// artifact URLs.",
    ),
    Setting(
        "ray_address",
        "CAUCE_RAY_ADDRESS",
        None,
        "Ray cluster the ray executor joins ('auto', 'ray://host:10001'); unset: a local Ray.",
    ),
    Setting(
        "openlineage_url",
        "CAUCE_OPENLINEAGE_URL",
        None,
        "Where pipeline runs send OpenLineage RunEvents: an http(s):// URL (POST) or a file "
        "path (JSON lines); unset sends none.",
    ),
    Setting(
        "openlineage_namespace",
        "CAUCE_OPENLINEAGE_NAMESPACE",
        "cauce",
        "The OpenLineage namespace of Cauce's jobs and datasets.",
    ),
    Setting(
        "action_lease_s",
        "CAUCE_ACTION_LEASE_S",
        "60",
        "Seconds an agent holds an alert action it claimed without renewing it; an action whose "
        "agent stopped (killed, crashed) is taken up again by another after this long.",
    ),
    Setting(
        "action_workers",
        "CAUCE_ACTION_WORKERS",
        "4",
        "How many alert actions (webhooks, retraining triggers) one agent runs at once.",
    ),
    Setting(
        "trace_content",
        "CAUCE_TRACE_CONTENT",
        "true",
        "Whether GenAI traces keep prompts, completions, retrieved text and node inputs and "
        "outputs ('false' keeps only their shape: tokens, latency, ids, scores).",
    ),
    Setting(
        "trace_redact",
        "CAUCE_TRACE_REDACT",
        None,
        "A module:function that takes a text and returns it redacted; it runs on every text a "
        "trace keeps, before it is stored or exported.",
    ),
    Setting(
        "trace_retention",
        "CAUCE_TRACE_RETENTION",
        None,
        "How long GenAI traces are kept (30d, 12h): `cauce agent` deletes older ones, with their "
        "spans, tags and feedback. Unset: kept until deleted.",
    ),
    Setting(
        "otlp_endpoint",
        "CAUCE_OTLP_ENDPOINT",
        None,
        "An OTLP/HTTP traces URL (http://collector:4318/v1/traces) that GenAI spans are also "
        "exported to; unset exports none.",
    ),
    Setting(
        "server_url",
        "CAUCE_SERVER_URL",
        None,
        "A Cauce server (http://host:port, or http://host:port/w/NAME for one of its "
        "workspaces) that every SDK call and CLI command goes to instead of the local store.",
    ),
    Setting(
        "server_signed_urls",
        "CAUCE_SERVER_SIGNED_URLS",
        "false",
        "Whether `cauce server` answers an artifact download from an S3 artifact store with a "
        "redirect to a URL signed for 5 minutes (the bytes then skip the server); only when "
        "clients can reach the S3 endpoint themselves.",
    ),
    Setting(
        "server_token",
        "CAUCE_SERVER_TOKEN",
        None,
        "The API token sent to CAUCE_SERVER_URL (created with `cauce tokens create`).",
    ),
    Setting(
        "oidc_issuer",
        "CAUCE_OIDC_ISSUER",
        None,
        "The team server accepts OIDC bearer tokens (JWTs) whose 'iss' is this; needs "
        "CAUCE_OIDC_AUDIENCE and CAUCE_OIDC_JWKS too. Unset: API tokens only.",
    ),
    Setting(
        "oidc_audience",
        "CAUCE_OIDC_AUDIENCE",
        None,
        "The 'aud' an OIDC bearer token must carry (the client id the identity provider issued).",
    ),
    Setting(
        "oidc_jwks",
        "CAUCE_OIDC_JWKS",
        None,
        "Where the identity provider's signing keys are: a JWKS file path or an http(s):// URL.",
    ),
    Setting(
        "oidc_name_claim",
        "CAUCE_OIDC_NAME_CLAIM",
        "email",
        "The claim that names an OIDC principal (recorded in audit events); 'sub' when absent.",
    ),
    Setting(
        "oidc_roles_claim",
        "CAUCE_OIDC_ROLES_CLAIM",
        "roles",
        "The claim that holds an OIDC principal's roles: a list of 'WORKSPACE:ROLE' strings "
        "or a {workspace: role} mapping.",
    ),
)

_SYNC_MODES = ("normal", "full")


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one workspace."""

    root: Path
    config_file: Path | None
    db_url: str
    artifacts: str
    sqlite_sync: str
    busy_timeout_ms: int
    user: str
    experiment: str
    s3_endpoint_url: str | None
    ray_address: str | None = None
    openlineage_url: str | None = None
    openlineage_namespace: str = "cauce"
    action_lease_s: float = 60.0
    action_workers: int = 4
    trace_content: bool = True
    trace_redact: str | None = None
    trace_retention_ms: int | None = None
    otlp_endpoint: str | None = None
    server_url: str | None = None
    server_signed_urls: bool = False
    server_token: str | None = field(default=None, repr=False)
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks: str | None = None
    oidc_name_claim: str = "email"
    oidc_roles_claim: str = "roles"

    @property
    def state_dir(self) -> Path:
        """The workspace's ``.cauce`` folder (SQLite database and local artifacts by default)."""
        return self.root / STATE_DIR


def find_root(env: Mapping[str, str], cwd: Path) -> tuple[Path, Path | None]:
    """Return the workspace root and its ``cauce.yaml`` (None when there is none)."""
    home = env.get("CAUCE_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        config = root / CONFIG_FILE
        return root, config if config.is_file() else None
    for folder in (cwd, *cwd.parents):
        config = folder / CONFIG_FILE
        if config.is_file():
            return folder, config
    return cwd, None


def read_config_file(path: Path) -> dict[str, Any]:
    """Read ``cauce.yaml``; an unknown key or a malformed file is an InvalidInput."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a mapping of settings, not {type(data).__name__}")
    known = {s.name for s in SETTINGS if s.name != "home"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(
            f"{path}: unknown setting {', '.join(unknown)}",
            hint=f"known settings: {', '.join(sorted(known))}",
        )
    return {k: str(v) for k, v in data.items() if v is not None}


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Resolve the settings for the workspace found from ``cwd`` (default: the current folder)."""
    env = os.environ if env is None else env
    root, config_file = find_root(env, (cwd or Path.cwd()).resolve())
    values = {s.name: s.default for s in SETTINGS}
    # Where each value came from, so that an error names the place to fix it.
    sources = {s.name: s.env for s in SETTINGS}
    if config_file is not None:
        from_file = read_config_file(config_file)
        values.update(from_file)
        sources.update({name: f"{name} in {config_file}" for name in from_file})
    for s in SETTINGS:
        if env.get(s.env):
            values[s.name] = env[s.env]
            sources[s.name] = s.env

    state = root / STATE_DIR
    db_url = values["db_url"] or f"sqlite:///{state / 'cauce.db'}"
    artifacts = values["artifacts"] or str(state / "artifacts")
    if "://" not in artifacts and not Path(artifacts).is_absolute():
        artifacts = str(root / artifacts)

    sync = (values["sqlite_sync"] or "normal").lower()
    if sync not in _SYNC_MODES:
        raise InvalidInput(
            f"{sources['sqlite_sync']} must be one of {', '.join(_SYNC_MODES)}, not {sync!r}"
        )
    try:
        busy = int(values["busy_timeout_ms"] or 0)
    except ValueError:
        raise InvalidInput(
            f"{sources['busy_timeout_ms']} must be an integer, not {values['busy_timeout_ms']!r}"
        ) from None

    lease = _number(values["action_lease_s"], sources["action_lease_s"], float)
    if lease <= 0:
        raise InvalidInput(f"{sources['action_lease_s']} must be positive, not {lease:g}")
    workers = _number(values["action_workers"], sources["action_workers"], int)
    if workers < 1:
        raise InvalidInput(f"{sources['action_workers']} must be at least 1, not {workers}")

    content = _flag(values["trace_content"] or "true", sources["trace_content"])
    retention = None
    if values["trace_retention"]:
        try:
            retention = duration_ms(values["trace_retention"])
        except ValueError as exc:
            raise InvalidInput(f"{sources['trace_retention']}: {exc}") from None
        if retention <= 0:
            raise InvalidInput(f"{sources['trace_retention']} must be longer than 0")
    signed = _flag(values["server_signed_urls"] or "false", sources["server_signed_urls"])

    return Settings(
        root=root,
        config_file=config_file,
        db_url=db_url,
        artifacts=artifacts,
        sqlite_sync=sync,
        busy_timeout_ms=busy,
        user=values["user"] or _os_user(),
        experiment=values["experiment"] or "Default",
        s3_endpoint_url=values["s3_endpoint_url"],
        ray_address=values["ray_address"],
        openlineage_url=values["openlineage_url"],
        openlineage_namespace=values["openlineage_namespace"] or "cauce",
        action_lease_s=lease,
        action_workers=workers,
        trace_content=content,
        trace_redact=values["trace_redact"],
        trace_retention_ms=retention,
        otlp_endpoint=values["otlp_endpoint"],
        server_url=_server_url(values["server_url"], sources["server_url"]),
        server_signed_urls=signed,
        server_token=values["server_token"],
        oidc_issuer=values["oidc_issuer"],
        oidc_audience=values["oidc_audience"],
        oidc_jwks=values["oidc_jwks"],
        oidc_name_claim=values["oidc_name_claim"] or "email",
        oidc_roles_claim=values["oidc_roles_claim"] or "roles",
    )


def _flag(value: str, source: str) -> bool:
    text = value.lower()
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise InvalidInput(f"{source} must be true or false, not {value!r}")
    return text in ("true", "1", "yes")


def _server_url(value: str | None, source: str) -> str | None:
    if not value:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{source} must be an http(s)://host:port URL, not {value!r}")
    return value.rstrip("/")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}


def duration_ms(value: Any) -> int:
    """``250ms``, ``10s``, ``5m``, ``1h``, ``2d`` or a number of seconds, as milliseconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        value = str(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not a duration: {value!r} (write 250ms, 10s, 5m, 1h or 2d)")
    ms = float(match.group(1)) * _UNIT_MS[match.group(2)]
    if not math.isfinite(ms):  # hundreds of digits: float() gives infinity, int() would raise
        raise ValueError(f"not a duration: {value!r} is too long")
    return int(ms)


def _number(value: str | None, source: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value or 0)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise InvalidInput(f"{source} must be {what}, not {value!r}") from None


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def load_object(target: str, *, what: str = "plugin") -> Any:
    """The object a ``"package.module:attribute"`` string names, imported on first use.

    Built-in backends (executors, flavors, spec kinds) and user hooks (a collector's redactor)
    are named this way; anything that does not resolve is an InvalidInput naming ``what``.
    """
    import importlib

    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"{what} {target!r} must be written module:attribute")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"{what} {target!r}: cannot import {module_name}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise InvalidInput(f"{what} {target!r}: {module_name} has no {attribute!r}") from None


def config_template() -> str:
    """The commented ``cauce.yaml`` that ``cauce init`` writes."""
    lines = ["# Cauce workspace settings. Each can be overridden by its CAUCE_* variable.", ""]
    for s in SETTINGS:
        if s.name == "home":
            continue
        lines.append(f"# {s.help} ({s.env})")
        lines.append(f"# {s.name}: {s.default if s.default is not None else ''}".rstrip())
        lines.append("")
    return "\n".join(lines)
