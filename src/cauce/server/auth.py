"""Authentication of the team server's requests: API tokens, OIDC bearer tokens, failed logins
rate-limited, and the rule that turns it off on a laptop.

The server's middleware calls :meth:`Authenticator.authenticate` with the request's headers and
client address, and gets a :class:`~cauce.server.roles.Principal`, or an ``Unauthorized`` (401)
or ``RateLimited`` (429) to answer with; each route then calls :func:`require` for the role it
needs. Nothing here knows about HTTP frameworks.

Credentials, in ``Authorization``:

- ``Bearer ct-…``: an API token (``cauce tokens create``), the way the SDK, the CLI and the
  MLflow client (``MLFLOW_TRACKING_TOKEN``) send it;
- ``Basic base64(user:token)``: the MLflow client's ``MLFLOW_TRACKING_USERNAME`` and
  ``MLFLOW_TRACKING_PASSWORD``, with the token as the password (the user name is only a label:
  the token says who it is); a token as the user name with an empty password works too;
- ``Bearer <JWT>``: an OIDC token from the team's identity provider, when ``CAUCE_OIDC_*`` is set.

**When it is on.** Authentication is off only while the server listens on a loopback address
(127.0.0.1, ::1, localhost), no token was ever created in its home store, and OIDC is not set
up: then every request is the anonymous principal with the admin role, as on a laptop. In every
other case it is on, and a server that listens beyond loopback with no token refuses every
request (401) and logs how to create one. A revoked or expired token still counts as created:
revoking the last token never opens the server.

**Caching.** A verified token is remembered, by its sha256, for ``cache_s`` seconds (5 by
default), so that a burst of requests pays one database query: a revoked token is therefore
refused within ``cache_s`` seconds, and an expired one at once. OIDC tokens are remembered as
long, and never past their ``exp``.

**Failed logins.** After ``max_failures`` (10) failed attempts within ``failure_window_s`` (60 s)
from one client address (IPv6 by its /64, which one machine usually holds whole), or under one
Basic user name, every attempt from there is answered ``RateLimited`` with ``retry_after``, until
the oldest of those failures is older than the window, before any credential is looked at, so a
correct token guessed then gains nothing. A request with no credentials is not a failed login
(a health check is not an attack). At most ``max_tracked`` addresses and names are remembered;
past that the one whose last failure is oldest is forgotten first.

**Secrets.** No token, password or JWT is written into a log line, an error message, an audit
event or an exception: failures are logged with the client address and the reason only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cauce.errors import RateLimited, Unauthorized
from cauce.server.oidc import OIDCSettings, OIDCVerifier
from cauce.server.roles import (
    ALL_WORKSPACES,
    ANONYMOUS,
    ROLES,
    Principal,
    may_manage,
    require,
    require_manage,
)
from cauce.server.tokens import PREFIX, any_tokens, find_token, hash_token

if TYPE_CHECKING:
    from cauce.config import Settings
    from cauce.workspace import Workspace

__all__ = [
    "ALL_WORKSPACES",
    "ANONYMOUS",
    "ROLES",
    "AuthSettings",
    "Authenticator",
    "FailureLimiter",
    "Principal",
    "is_loopback",
    "may_manage",
    "require",
    "require_manage",
]

log = logging.getLogger("cauce.server.auth")

CREATE_HINT = (
    "create one on the server's machine: cauce tokens create NAME --role admin --workspace '*'"
)


@dataclass(frozen=True)
class AuthSettings:
    """How a server authenticates: where it listens, OIDC, and the cache and limiter bounds."""

    host: str = "127.0.0.1"  # the address the server binds to
    oidc: OIDCSettings | None = None
    cache_s: float = 5.0
    max_failures: int = 10
    failure_window_s: float = 60.0
    max_tracked: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings, *, host: str) -> AuthSettings:
        """The auth settings of a server on ``host`` serving the workspace of ``settings``."""
        return cls(host=host, oidc=OIDCSettings.from_settings(settings))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine can reach (0.0.0.0 and :: are not)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another host name: it may resolve to anything
        return False


class FailureLimiter:
    """Failed logins per key (a client address, a user name), in a sliding window; bounded."""

    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        max_tracked: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_tracked = max_tracked
        self._clock = clock
        self._lock = threading.Lock()
        # key -> its last ``max_failures`` failure times; ordered by the latest failure
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, keys: Iterable[str]) -> float | None:
        """Seconds until any of ``keys`` may try again, or None when all may try now."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if times is not None and len(times) >= self.max_failures:
                    wait = max(wait, times[0] + self.window_s - now)
        return wait if wait > 0 else None

    def fail(self, keys: Iterable[str]) -> None:
        """Count one failed attempt against each of ``keys``."""
        now = self._clock()
        with self._lock:
            for key in keys:
                times = self._failures.pop(key, None)
                if times is None:
                    times = deque(maxlen=self.max_failures)
                times.append(now)
                self._failures[key] = times  # now the newest
            while len(self._failures) > self.max_tracked:
                self._failures.popitem(last=False)

    def __len__(self) -> int:
        return len(self._failures)


@dataclass
class _Cached:
    principal: Principal
    until: float  # clock time after which it must be looked up again


@dataclass
class _Credentials:
    secret: str
    user: str | None = None  # a Basic user name, a label the limiter counts failures under


class Authenticator:
    """Turns a request's headers into a principal (see the module's docstring); thread-safe."""

    def __init__(
        self,
        home: Workspace,
        settings: AuthSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.home = home
        self.settings = settings or AuthSettings()
        self._clock = clock
        self._oidc = OIDCVerifier(self.settings.oidc) if self.settings.oidc else None
        self._limiter = FailureLimiter(
            self.settings.max_failures,
            self.settings.failure_window_s,
            self.settings.max_tracked,
            clock=clock,
        )
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._tokens_seen = False  # once a token exists, auth stays on: no need to look again
        self._tokens_checked_at: float | None = None
        self._hinted_at: float | None = None

    @property
    def enabled(self) -> bool:
        """Whether requests must authenticate (off only on loopback with no token and no OIDC)."""
        if self._oidc is not None or not is_loopback(self.settings.host):
            return True
        return self._tokens_exist()

    def describe(self) -> str:
        """One line for the server's start-up log: whether auth is on, and how."""
        if not self.enabled:
            return (
                f"authentication off: {self.settings.host} is loopback and no API token exists "
                "(every request is an anonymous admin; creating a token turns it on)"
            )
        ways = ["API tokens"]
        if self.settings.oidc is not None:
            ways.append(f"OIDC tokens from {self.settings.oidc.issuer}")
        line = f"authentication on: {' and '.join(ways)}"
        if not self._tokens_exist() and self.settings.oidc is None:
            line += f"; no API token exists yet, so every request is refused: {CREATE_HINT}"
        return line

    def authenticate(self, headers: Mapping[str, str], client_ip: str) -> Principal:
        """The principal a request's headers prove, or Unauthorized (401) / RateLimited (429).

        ``client_ip`` is the address the failed-login limit counts against: the peer's, or the
        one a trusted proxy forwarded.
        """
        if not self.enabled:
            return ANONYMOUS
        header = _header(headers, "authorization")
        if not header:
            self._hint_when_no_tokens()
            raise Unauthorized(
                "authentication required: send Authorization: Bearer <token>",
                hint=self._hint(),
            )
        credentials = _parse(header)
        keys = [_client_key(client_ip)]
        if credentials is not None and credentials.user:
            keys.append("user:" + credentials.user)
        wait = self._limiter.retry_after(keys)
        if wait is not None:
            raise RateLimited(
                "too many failed logins from this client; try again later",
                retry_after=round(wait, 3),
                details={"retry_after": round(wait, 3)},
            )
        try:
            if credentials is None:
                raise Unauthorized(
                    "Authorization must be 'Bearer <token>' or Basic with the token as password"
                )
            return self._verify(credentials.secret)
        except Unauthorized as exc:
            self._limiter.fail(keys)
            log.warning("authentication failed from %s: %s", client_ip, exc.message)
            self._hint_when_no_tokens()
            if exc.hint is None:
                exc.hint = self._hint()
            raise

    def forget(self) -> None:
        """Drop every remembered token, so that the next request of each is looked up again."""
        with self._lock:
            self._cache.clear()

    # -- verification ----------------------------------------------------------------------------

    def _verify(self, secret: str) -> Principal:
        digest = hash_token(secret)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None and now < cached.until:
                self._cache.move_to_end(digest)
                return cached.principal
        if secret.startswith(PREFIX):
            principal, until = self._token(digest, now)
        elif self._oidc is not None and secret.count(".") == 2:
            principal, expires = self._oidc.verify(secret)
            until = min(now + self.settings.cache_s, expires)
        else:
            raise Unauthorized("token not recognised")
        with self._lock:
            self._cache[digest] = _Cached(principal, until)
            self._cache.move_to_end(digest)
            while len(self._cache) > self.settings.max_tracked:
                self._cache.popitem(last=False)
        return principal

    def _token(self, digest: str, now: float) -> tuple[Principal, float]:
        info = find_token(digest, home=self.home)
        if info is None:
            raise Unauthorized("token not recognised")
        if info.revoked_at is not None:
            raise Unauthorized(f"token {info.prefix}… of {info.name} was revoked")
        until = now + self.settings.cache_s
        if info.expires_at is not None:
            if now * 1000 >= info.expires_at:
                raise Unauthorized(
                    f"token {info.prefix}… of {info.name} expired",
                    hint="ask an admin for a new one: cauce tokens create",
                )
            until = min(until, info.expires_at / 1000)
        return Principal(info.name, via="token", roles=dict(info.roles), token_id=info.id), until

    # -- whether tokens exist ------------------------------------------------------------------

    def _tokens_exist(self) -> bool:
        if self._tokens_seen:
            return True
        now = self._clock()
        checked = self._tokens_checked_at
        if checked is not None and checked <= now < checked + self.settings.cache_s:
            return False
        self._tokens_seen = any_tokens(home=self.home)
        self._tokens_checked_at = now
        return self._tokens_seen

    def _hint(self) -> str | None:
        if self._oidc is None and not self._tokens_exist():
            return f"this server has no API token yet; {CREATE_HINT}"
        return None

    def _hint_when_no_tokens(self) -> None:
        """Log, at most once a minute, why a server with no token refuses everything."""
        if self._oidc is not None or self._tokens_exist():
            return
        now = self._clock()
        if self._hinted_at is None or not self._hinted_at <= now < self._hinted_at + 60:
            self._hinted_at = now
            log.warning(
                "refusing a request: authentication is on (the server listens on %s) and no API "
                "token exists; %s",
                self.settings.host,
                CREATE_HINT,
            )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name in ``headers``."""
    value = headers.get(name) or headers.get(name.title())
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if value else None


def _parse(header: str) -> _Credentials | None:
    """The secret in an Authorization header, or None when it is in neither scheme."""
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return _Credentials(value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        if not password:  # a token sent as the user name
            return _Credentials(user) if user else None
        return _Credentials(password, user=user or None)
    return None


def _client_key(client_ip: str) -> str:
    """What the limiter counts a client's failures under: its IPv4 address, its IPv6 /64."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return "ip:" + client_ip
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return "ip:" + str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return "ip:" + str(address.ipv4_mapped)
    return "ip:" + str(address)
