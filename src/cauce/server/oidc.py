"""OIDC bearer tokens: JWTs from a team's identity provider, checked against its signing keys.

A JWT is accepted when its signature verifies with a key of the provider's JWKS (a file, re-read
when it changes, or an ``http(s)://`` URL, fetched with PyJWT's ``PyJWKClient`` and kept for
five minutes, fetched again for a key id it has not seen, at most every ten seconds), with an
asymmetric algorithm (RS*, PS*, ES*, EdDSA: never HS256, which would make the public keys a
shared secret), its ``iss`` equal to the configured issuer, its ``aud`` holding the configured
audience, and its ``exp`` in the future (30 s of clock skew allowed). All three are required.

The principal's name is the configured claim (``email`` by default), else ``sub``. Its roles are
the roles claim (``roles`` by default), in either of two shapes:

- a list of ``"WORKSPACE:ROLE"`` strings, ``["default:editor", "reports:viewer", "*:admin"]``
  (what an identity provider's app roles or groups give), or one such string, or several
  separated by spaces or commas;
- a mapping ``{"default": "editor", "*": "viewer"}``.

Entries that are not in that form, or whose role is not viewer, editor or admin, are ignored;
where a workspace is named twice the higher role counts. A principal with no roles is
authenticated but may do nothing (403).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.errors import BackendError, InvalidInput, Unauthorized
from cauce.server.roles import RANK, Principal

if TYPE_CHECKING:
    from jwt import PyJWK

    from cauce.config import Settings

__all__ = ["OIDCSettings", "OIDCVerifier", "roles_from_claim"]

log = logging.getLogger("cauce.server.auth")

ASYMMETRIC = {
    "RSA": {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"},
    "EC": {"ES256", "ES384", "ES512"},
    "OKP": {"EdDSA"},
}


@dataclass(frozen=True)
class OIDCSettings:
    """Where an identity provider's keys are and what its tokens must say."""

    issuer: str
    audience: str
    jwks: str  # a JWKS file path or an http(s):// URL
    name_claim: str = "email"
    roles_claim: str = "roles"
    leeway_s: float = 30.0
    jwks_cache_s: float = 300.0
    # A key id the cached JWKS lacks fetches it again, at most once per this many seconds: a
    # rotated key is accepted within it, and forged key ids cannot make the server hammer the
    # identity provider.
    jwks_refresh_s: float = 10.0
    timeout_s: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> OIDCSettings | None:
        """The OIDC settings of a workspace (``CAUCE_OIDC_*``), or None when OIDC is not set up;
        an InvalidInput names what is missing when only some of them are set."""
        required = {
            "CAUCE_OIDC_ISSUER": settings.oidc_issuer,
            "CAUCE_OIDC_AUDIENCE": settings.oidc_audience,
            "CAUCE_OIDC_JWKS": settings.oidc_jwks,
        }
        if not any(required.values()):
            return None
        unset = [name for name, value in required.items() if not value]
        if unset:
            raise InvalidInput(
                f"OIDC needs {', '.join(required)}; {', '.join(unset)} not set",
                hint="set all three, or none to accept API tokens only",
            )
        return cls(
            issuer=settings.oidc_issuer or "",
            audience=settings.oidc_audience or "",
            jwks=settings.oidc_jwks or "",
            name_claim=settings.oidc_name_claim,
            roles_claim=settings.oidc_roles_claim,
        )


class OIDCVerifier:
    """Checks OIDC bearer tokens against one identity provider; thread-safe."""

    def __init__(self, settings: OIDCSettings):
        try:
            import jwt
        except ImportError:
            raise InvalidInput(
                "OIDC needs PyJWT, which is not installed",
                hint="pip install 'cauce[oidc]'",
            ) from None
        self.settings = settings
        self._jwt = jwt
        self._lock = threading.Lock()
        self._client: Any = None
        self._file_keys: list[PyJWK] = []
        self._file_stamp: tuple[float, int] | None = None
        if settings.jwks.startswith(("http://", "https://")):
            self._client = jwt.PyJWKClient(
                settings.jwks,
                cache_jwk_set=True,
                lifespan=settings.jwks_cache_s,
                timeout=settings.timeout_s,
                cooldown_duration=settings.jwks_refresh_s,
            )
        else:
            self._load_file()  # a missing or broken file is a mistake to report at start

    def verify(self, token: str) -> tuple[Principal, float]:
        """The principal a valid token stands for, and when the token expires (epoch seconds).

        Raises Unauthorized for a token that is malformed, signed by an unknown key or with a
        symmetric algorithm, expired, or for another issuer or audience; BackendError when the
        JWKS URL cannot be read.
        """
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("bearer token is neither an API token nor a JWT") from None
        algorithm = header.get("alg")
        key = self._key(header.get("kid"))
        allowed = ASYMMETRIC.get(key.key_type or "", set())
        # A key that names its algorithm signs with that one alone (RFC 8725 §3.1); PyJWK keeps
        # the JWK as read, and says only the algorithm it inferred when the JWK names none.
        declared = getattr(key, "_jwk_data", {}).get("alg")
        if algorithm not in allowed or (declared and algorithm != declared):
            raise Unauthorized(
                f"OIDC token signed with {algorithm!r}, which its key does not allow"
            )
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "OIDC token expired", hint="get a new one from the identity provider"
            ) from None
        except jwt.PyJWTError as exc:
            # PyJWT's messages name the failed check (issuer, audience, signature), never the token.
            raise Unauthorized(f"OIDC token rejected: {exc}") from None
        name = claims.get(self.settings.name_claim) or claims.get("sub")
        if not isinstance(name, str) or not name:
            raise Unauthorized(
                f"OIDC token has neither a {self.settings.name_claim!r} nor a 'sub' claim"
            )
        roles = roles_from_claim(claims.get(self.settings.roles_claim))
        return Principal(name, via="oidc", roles=roles), float(claims["exp"])

    def _key(self, kid: Any) -> PyJWK:
        jwt = self._jwt
        if self._client is not None:
            try:
                if kid is None:
                    keys = self._client.get_signing_keys()
                    return _only(keys)
                return self._client.get_signing_key(str(kid))  # type: ignore[no-any-return]
            except jwt.PyJWKClientConnectionError as exc:
                raise BackendError(
                    f"cannot read the identity provider's keys from {self.settings.jwks}: {exc}"
                ) from None
            except jwt.PyJWKClientError:
                raise Unauthorized(
                    "OIDC token signed by a key the identity provider does not list"
                ) from None
            except jwt.PyJWTError as exc:
                raise BackendError(
                    f"the identity provider's keys at {self.settings.jwks} are unusable: {exc}"
                ) from None
        with self._lock:
            self._load_file()
            keys = self._file_keys
        if kid is None:
            return _only(keys)
        for key in keys:
            if key.key_id == kid:
                return key
        raise Unauthorized("OIDC token signed by a key the identity provider does not list")

    def _load_file(self) -> None:
        """(Re)read the JWKS file when it changed since it was last read."""
        path = self.settings.jwks
        try:
            stat = os.stat(path)
            stamp = (stat.st_mtime, stat.st_size)
            if stamp == self._file_stamp:
                return
            with open(path) as file:
                data = json.load(file)
            keys = self._jwt.PyJWKSet.from_dict(data).keys
        except (OSError, ValueError, AttributeError, self._jwt.PyJWTError) as exc:
            if self._file_stamp is not None:  # keep the keys read before; say why not newer
                log.warning(
                    "JWKS file %s could not be re-read, keeping its last keys: %s", path, exc
                )
                return
            raise InvalidInput(f"CAUCE_OIDC_JWKS: cannot read a JWKS from {path}: {exc}") from None
        self._file_keys = [k for k in keys if k.public_key_use in (None, "sig")]
        self._file_stamp = stamp


def _only(keys: list[PyJWK]) -> PyJWK:
    """The one signing key, for a token that names none."""
    if len(keys) != 1:
        raise Unauthorized("OIDC token names no key id ('kid') and the provider has several keys")
    return keys[0]


def roles_from_claim(value: Any) -> dict[str, str]:
    """Roles per workspace from a roles claim (see the module's docstring for its shapes)."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    else:
        if isinstance(value, str):
            value = re.split(r"[\s,]+", value.strip())
        if isinstance(value, list):
            for entry in value:
                if isinstance(entry, str) and ":" in entry:
                    workspace, _, role = entry.rpartition(":")
                    pairs.append((workspace, role))
    roles: dict[str, str] = {}
    for workspace, role in pairs:
        if not isinstance(workspace, str) or not workspace or role not in RANK:
            continue
        if workspace not in roles or RANK[role] > RANK[roles[workspace]]:
            roles[workspace] = role
    return roles
