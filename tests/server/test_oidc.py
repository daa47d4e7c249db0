"""OIDC bearer tokens: JWTs signed with keys made here, their JWKS read from a file and served
over loopback HTTP, checked for signature, algorithm, issuer, audience and expiry."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cauce.config import load_settings
from cauce.errors import BackendError, Forbidden, InvalidInput, RateLimited, Unauthorized
from cauce.server.auth import Authenticator, AuthSettings, require
from cauce.server.oidc import OIDCSettings, OIDCVerifier, roles_from_claim
from cauce.workspace import Workspace
from optional import need

jwt = need("jwt", extra="oidc")
need("cryptography", extra="oidc")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

ISSUER = "https://login.example.test/tenant"
AUDIENCE = "cauce-server"


class Provider:
    """An identity provider in miniature: signing keys and the JWKS that lists them."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.add_key("k1")

    def add_key(self, kid: str, kind: str = "rsa") -> None:
        if kind == "rsa":
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.keys[kid] = ec.generate_private_key(ec.SECP256R1())

    def jwks(self) -> dict[str, Any]:
        listed = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            else:
                jwk = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            listed.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": listed}

    def token(
        self,
        kid: str | None = "k1",
        algorithm: str = "RS256",
        key: Any = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "00u1abc",
            "email": "alice@example.test",
            "iat": now,
            "exp": now + 300,
            "roles": ["churn:editor", "*:viewer"],
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        headers = {"kid": kid} if kid else {}
        return jwt.encode(body, key or self.keys[kid or "k1"], algorithm=algorithm, headers=headers)


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def jwks_file(provider: Provider, tmp_path: Path) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(provider.jwks()))
    return path


@contextlib.contextmanager
def jwks_server(provider: Provider) -> Iterator[tuple[str, list[str]]]:
    """The provider's JWKS served on a loopback port: its URL and the paths fetched."""
    fetched: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            data = json.dumps(provider.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/.well-known/jwks.json", fetched
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def settings(jwks: str | Path, **changes: Any) -> OIDCSettings:
    return replace(OIDCSettings(issuer=ISSUER, audience=AUDIENCE, jwks=str(jwks)), **changes)


def test_a_token_signed_by_a_listed_key_names_its_principal_and_roles(
    provider: Provider, jwks_file: Path
) -> None:
    verifier = OIDCVerifier(settings(jwks_file))
    principal, expires = verifier.verify(provider.token())
    assert (principal.name, principal.via) == ("alice@example.test", "oidc")
    assert principal.roles == {"churn": "editor", "*": "viewer"}
    assert principal.role_in("churn") == "editor" and principal.role_in("reports") == "viewer"
    assert time.time() + 290 < expires <= time.time() + 300
    # No email: the subject; another claim configured: that one.
    assert verifier.verify(provider.token(email=None))[0].name == "00u1abc"
    named = OIDCVerifier(settings(jwks_file, name_claim="preferred_username"))
    assert named.verify(provider.token(preferred_username="alice"))[0].name == "alice"
    with pytest.raises(Unauthorized, match="neither a 'email' nor a 'sub'"):
        verifier.verify(provider.token(email=None, sub=None))


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://evil.example.test"}, "(?i)issuer"),
        ({"aud": "another-app"}, "(?i)audience"),
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"exp": None}, "exp"),
        ({"iss": None}, "iss"),
        ({"aud": None}, "aud"),
    ],
)
def test_issuer_audience_and_expiry_are_required_and_checked(
    provider: Provider, jwks_file: Path, claims: dict[str, Any], reason: str
) -> None:
    verifier = OIDCVerifier(settings(jwks_file))
    with pytest.raises(Unauthorized, match=reason):
        verifier.verify(provider.token(**claims))


def test_a_little_clock_skew_is_allowed(provider: Provider, jwks_file: Path) -> None:
    verifier = OIDCVerifier(settings(jwks_file))
    assert verifier.verify(provider.token(exp=int(time.time()) - 10))[0].name
    with pytest.raises(Unauthorized, match="expired"):
        OIDCVerifier(settings(jwks_file, leeway_s=0)).verify(
            provider.token(exp=int(time.time()) - 10)
        )


def test_forged_tokens_are_refused(provider: Provider, jwks_file: Path) -> None:
    verifier = OIDCVerifier(settings(jwks_file))
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized, match="Signature verification failed"):
        verifier.verify(provider.token(key=impostor))  # a listed kid, another key
    with pytest.raises(Unauthorized, match="key the identity provider does not list"):
        verifier.verify(provider.token(kid="k9", key=impostor))
    # The public key used as an HMAC secret (algorithm confusion), and no signature at all.
    public_pem = (
        provider.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    confused = _unsafe_hs256(header, provider, public_pem)
    with pytest.raises(Unauthorized, match="'HS256', which its key does not allow"):
        verifier.verify(confused)
    unsigned = provider.token().rsplit(".", 2)
    none_header = _b64(json.dumps({"alg": "none", "kid": "k1"}).encode())
    with pytest.raises(Unauthorized, match="'none'"):
        verifier.verify(f"{none_header}.{unsigned[1]}.")
    with pytest.raises(Unauthorized, match="neither an API token nor a JWT"):
        verifier.verify("not.a.jwt")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsafe_hs256(header: dict[str, Any], provider: Provider, secret: bytes) -> str:
    """A token signed HS256 with ``secret``, built by hand (PyJWT refuses a PEM as HMAC key)."""
    import hashlib
    import hmac

    payload = json.loads(base64.urlsafe_b64decode(provider.token().split(".")[1] + "=="))
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(signature)}"


def test_an_ec_key_and_a_token_without_a_key_id_work(provider: Provider, tmp_path: Path) -> None:
    only_ec = Provider()
    only_ec.keys.clear()
    only_ec.add_key("e1", kind="ec")
    path = tmp_path / "ec.json"
    path.write_text(json.dumps(only_ec.jwks()))
    verifier = OIDCVerifier(settings(path))
    assert verifier.verify(only_ec.token(kid="e1", algorithm="ES256"))[0].name
    no_kid = jwt.encode(
        jwt.decode(only_ec.token(kid="e1", algorithm="ES256"), options={"verify_signature": False}),
        only_ec.keys["e1"],
        algorithm="ES256",
    )
    assert verifier.verify(no_kid)[0].name == "alice@example.test"
    with pytest.raises(Unauthorized, match="'RS256', which its key does not allow"):
        verifier.verify(provider.token(kid="e1", key=provider.keys["k1"]))


def test_the_jwks_file_is_read_again_when_it_changes(provider: Provider, jwks_file: Path) -> None:
    verifier = OIDCVerifier(settings(jwks_file))
    provider.add_key("k2")
    with pytest.raises(Unauthorized, match="does not list"):
        verifier.verify(provider.token(kid="k2"))
    jwks_file.write_text(json.dumps(provider.jwks()))
    assert verifier.verify(provider.token(kid="k2"))[0].name == "alice@example.test"
    jwks_file.write_text("{broken")  # a half-written file: the keys read before still count
    assert verifier.verify(provider.token(kid="k2"))[0].name == "alice@example.test"


def test_a_missing_jwks_file_is_reported_at_start(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read a JWKS from"):
        OIDCVerifier(settings(tmp_path / "nowhere.json"))


def test_the_jwks_url_is_fetched_once_and_again_for_a_rotated_key(provider: Provider) -> None:
    with jwks_server(provider) as (url, fetched):
        verifier = OIDCVerifier(settings(url, jwks_refresh_s=0))
        for _ in range(5):
            assert verifier.verify(provider.token())[0].name == "alice@example.test"
        assert fetched == ["/.well-known/jwks.json"]
        provider.add_key("k2", kind="ec")  # the provider rotates its keys
        assert verifier.verify(provider.token(kid="k2", algorithm="ES256"))[0].roles
        assert len(fetched) == 2


def test_forged_key_ids_do_not_make_the_server_hammer_the_provider(provider: Provider) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with jwks_server(provider) as (url, fetched):
        verifier = OIDCVerifier(settings(url))  # the default: at most one refetch per 10 s
        for n in range(20):
            with pytest.raises(Unauthorized):
                verifier.verify(provider.token(kid=f"forged-{n}", key=impostor))
        assert len(fetched) == 1


def test_an_unreachable_jwks_url_is_a_backend_error_not_a_bad_token(provider: Provider) -> None:
    with jwks_server(provider) as (url, _):
        pass  # stopped: nothing listens there any more
    verifier = OIDCVerifier(settings(url, timeout_s=2))
    with pytest.raises(BackendError, match="cannot read the identity provider's keys"):
        verifier.verify(provider.token())


def test_roles_claims_in_each_documented_shape() -> None:
    assert roles_from_claim(["churn:editor", "churn:admin", "reports:viewer", "*:viewer"]) == {
        "churn": "admin",
        "reports": "viewer",
        "*": "viewer",
    }
    assert roles_from_claim({"churn": "editor", "x": "owner"}) == {"churn": "editor"}
    assert roles_from_claim("churn:editor reports:viewer,*:admin") == {
        "churn": "editor",
        "reports": "viewer",
        "*": "admin",
    }
    for nothing in (None, [], "admin", ["admin", ":editor", "churn:"], 42, [{"churn": "admin"}]):
        assert roles_from_claim(nothing) == {}


def test_settings_come_from_the_cauce_oidc_variables(tmp_path: Path) -> None:
    env = {
        "CAUCE_HOME": str(tmp_path),
        "CAUCE_OIDC_ISSUER": ISSUER,
        "CAUCE_OIDC_AUDIENCE": AUDIENCE,
        "CAUCE_OIDC_JWKS": "https://login.example.test/keys",
        "CAUCE_OIDC_NAME_CLAIM": "upn",
        "CAUCE_OIDC_ROLES_CLAIM": "groups",
    }
    loaded = OIDCSettings.from_settings(load_settings(env=env))
    assert loaded == OIDCSettings(
        ISSUER, AUDIENCE, "https://login.example.test/keys", name_claim="upn", roles_claim="groups"
    )
    defaults = OIDCSettings.from_settings(
        load_settings(env={k: v for k, v in env.items() if "CLAIM" not in k})
    )
    assert defaults is not None
    assert (defaults.name_claim, defaults.roles_claim) == ("email", "roles")
    assert OIDCSettings.from_settings(load_settings(env={"CAUCE_HOME": str(tmp_path)})) is None
    with pytest.raises(InvalidInput, match="CAUCE_OIDC_AUDIENCE, CAUCE_OIDC_JWKS not set"):
        OIDCSettings.from_settings(
            load_settings(env={"CAUCE_HOME": str(tmp_path), "CAUCE_OIDC_ISSUER": ISSUER})
        )


def test_the_authenticator_takes_oidc_tokens_on_loopback_and_limits_bad_ones(
    workspace: Workspace, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with jwks_server(provider) as (url, fetched):
        auth = Authenticator(workspace, AuthSettings(host="127.0.0.1", oidc=settings(url)))
        assert auth.enabled  # OIDC set up: on, even on loopback with no API token
        assert "OIDC tokens from https://login.example.test/tenant" in auth.describe()
        with pytest.raises(Unauthorized):
            auth.authenticate({}, "127.0.0.1")
        token = provider.token()
        principal = auth.authenticate({"Authorization": f"Bearer {token}"}, "127.0.0.1")
        require(principal, "churn", "editor")
        with pytest.raises(Forbidden):
            require(principal, "churn", "admin")
        for _ in range(10):
            with pytest.raises(Unauthorized):
                auth.authenticate({"authorization": f"Bearer {token}x"}, "192.0.2.7")
        with pytest.raises(RateLimited):
            auth.authenticate({"authorization": f"Bearer {token}"}, "192.0.2.7")
        assert len(fetched) == 1
    assert token not in caplog.text and token.split(".")[2] not in caplog.text
