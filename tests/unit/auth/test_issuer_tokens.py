"""Issuer mode (production): only the identity provider's asymmetric tokens, key by ``kid``, ``iss``/``aud`` required.

The JWKS is served over real HTTP by a throw-away server in this process, as an identity provider serves it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from config.settings import Settings
from engine.adapters.auth import AuthConfigError, AuthError, TokenVerifier, mint

ISSUER = "https://id.example.com/"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": "payments-engine", "sub": "svc-erp", "role": "payment_operator",
            "merchant": "acct_erp", "iat": now, "exp": now + 300, **extra}  # fmt: skip


def _issuer_settings(tmp_path: Path, **jwt_settings: Any) -> Settings:
    return Settings(data_dir=tmp_path, jwt={"issuer": ISSUER, **jwt_settings})  # type: ignore[arg-type]


def test_a_token_of_the_issuer_is_accepted_by_its_kid(tmp_path: Path) -> None:
    verifier = TokenVerifier(_issuer_settings(tmp_path, public_keys={"k1": _pem(OTHER), "k2": _pem(KEY)}))
    token = jwt.encode(_claims(), KEY, "RS256", headers={"kid": "k2"})
    assert verifier.verify(token).sub == "svc-erp"
    # The same token presented under the other kid does not verify.
    with pytest.raises(AuthError):
        verifier.verify(jwt.encode(_claims(), KEY, "RS256", headers={"kid": "k1"}))


def test_es256_is_accepted_too(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier(_issuer_settings(tmp_path, public_keys={"ec": _pem(key)}))
    assert verifier.verify(jwt.encode(_claims(), key, "ES256", headers={"kid": "ec"})).role == "payment_operator"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": "https://evil.example.com/"},
        {"aud": "another-api"},
        {"role": "root"},
    ],
    ids=["other-issuer", "other-audience", "unknown-role"],
)
def test_wrong_claims_are_refused(tmp_path: Path, claims: dict[str, Any]) -> None:
    verifier = TokenVerifier(_issuer_settings(tmp_path, public_keys={"k": _pem(KEY)}))
    with pytest.raises(AuthError):
        verifier.verify(jwt.encode(_claims(**claims), KEY, "RS256", headers={"kid": "k"}))


@pytest.mark.parametrize("missing", ["iss", "aud", "iat", "exp", "sub"])
def test_each_required_claim_is_required(tmp_path: Path, missing: str) -> None:
    verifier = TokenVerifier(_issuer_settings(tmp_path, public_keys={"k": _pem(KEY)}))
    claims = {k: v for k, v in _claims().items() if k != missing}
    with pytest.raises(AuthError):
        verifier.verify(jwt.encode(claims, KEY, "RS256", headers={"kid": "k"}))


def test_hs256_is_refused_in_issuer_mode_whatever_secret_is_configured(tmp_path: Path) -> None:
    secret = "shared-" + "s" * 40
    settings = _issuer_settings(tmp_path, public_keys={"k": _pem(KEY)}, secret=secret)
    with pytest.raises(AuthError, match="not accepted"):
        TokenVerifier(settings).verify(jwt.encode(_claims(), secret, "HS256"))
    # The classic confusion: HS256 keyed with the public key's text.
    with pytest.raises(AuthError, match="not accepted"):
        TokenVerifier(settings).verify(jwt.encode(_claims(), _pem(KEY).encode()[:64], "HS256"))
    # And the engine does not create a local secret there, nor mint against it.
    assert not (tmp_path / "jwt-secret").exists()
    with pytest.raises(ValueError, match="identity provider"):
        mint(settings, "admin")


def test_a_token_above_the_maximum_lifetime_is_refused(tmp_path: Path) -> None:
    verifier = TokenVerifier(_issuer_settings(tmp_path, public_keys={"k": _pem(KEY)}))
    long_lived = _claims(exp=int(time.time()) + 3600)
    with pytest.raises(AuthError, match="lifetime"):
        verifier.verify(jwt.encode(long_lived, KEY, "RS256", headers={"kid": "k"}))


def test_an_issuer_without_keys_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="PAYMENTS_JWT_JWKS_URL"):
        TokenVerifier(_issuer_settings(tmp_path))


@pytest.fixture
def jwks_url() -> Iterator[str]:
    body = json.dumps({"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key())),
                                 "kid": "live-1", "use": "sig", "alg": "RS256"}]}).encode()  # fmt: skip

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


def test_keys_come_from_the_issuers_jwks_by_kid(tmp_path: Path, jwks_url: str) -> None:
    verifier = TokenVerifier(_issuer_settings(tmp_path, jwks_url=jwks_url))
    assert verifier.verify(jwt.encode(_claims(), KEY, "RS256", headers={"kid": "live-1"})).sub == "svc-erp"
    with pytest.raises(AuthError, match="kid"):
        verifier.verify(jwt.encode(_claims(), OTHER, "RS256", headers={"kid": "retired-0"}))
    with pytest.raises(AuthError):
        verifier.verify(jwt.encode(_claims(), OTHER, "RS256", headers={"kid": "live-1"}))
