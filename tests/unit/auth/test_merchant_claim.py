"""The ``merchant`` claim: who a token acts for, in each mode, and the 403 ``merchant_required`` of issuer mode."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from cli.main import cli
from config.settings import Settings
from engine.adapters.auth import AuthError, MerchantRequired, Principal, TokenVerifier, mint
from engine.domain.merchant import DEFAULT_MERCHANT, check_merchant_id, customer_ref, tenant_client
from engine.ingest.errors import ApiError
from engine.ingest.security import ALL_ROLES, authenticate

ISSUER = "https://id.example.com/"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _issuer(tmp_path: Path) -> TokenVerifier:
    settings = Settings(data_dir=tmp_path, jwt={"issuer": ISSUER, "public_keys": {"k": PEM.decode()}})  # type: ignore[arg-type]
    return TokenVerifier(settings)


def _issuer_token(**claims: Any) -> str:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": "payments-engine", "sub": "svc", "role": "payment_viewer", "iat": now}
    return jwt.encode({**base, "exp": now + 300, **claims}, KEY, "RS256", headers={"kid": "k"})


def _hs_token(secret: str, **claims: Any) -> str:
    now = int(time.time())
    base = {"aud": "payments-engine", "sub": "svc", "role": "payment_viewer", "iat": now, "exp": now + 300}
    return jwt.encode({**base, **claims}, secret, algorithm="HS256")


def test_minted_tokens_carry_their_merchant(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)  # type: ignore[call-arg]
    verifier = TokenVerifier(s)
    assert verifier.verify(mint(s, "viewer", merchant="acct_a")).merchant == "acct_a"
    assert verifier.verify(mint(s, "viewer")).merchant == DEFAULT_MERCHANT
    with pytest.raises(ValueError, match="merchant id"):
        mint(s, "viewer", merchant="a/b")


def test_a_shared_secret_token_without_the_claim_acts_for_the_default_merchant(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, jwt={"secret": "k" * 32})  # type: ignore[arg-type]
    principal = TokenVerifier(s).verify(_hs_token("k" * 32))
    assert principal == Principal(sub="svc", role="payment_viewer", merchant=DEFAULT_MERCHANT)
    assert principal.client == "svc"


def test_an_issuer_token_without_the_claim_is_refused(tmp_path: Path) -> None:
    verifier = _issuer(tmp_path)
    assert verifier.verify(_issuer_token(merchant="acct_1")).merchant == "acct_1"
    with pytest.raises(MerchantRequired):
        verifier.verify(_issuer_token())


@pytest.mark.parametrize("merchant", ["", "a/b", "a:b", "x" * 65, 7, ["acct_1"]], ids=str)
def test_a_merchant_that_is_no_merchant_id_is_refused(tmp_path: Path, merchant: Any) -> None:
    with pytest.raises(AuthError, match="merchant"):
        _issuer(tmp_path).verify(_issuer_token(merchant=merchant))


def test_a_default_merchant_sub_with_a_slash_is_refused(tmp_path: Path) -> None:
    # "acct_a/svc" is how merchant acct_a's subject svc keys its idempotency: a default subject may not spell it.
    s = Settings(data_dir=tmp_path, jwt={"secret": "k" * 32})  # type: ignore[arg-type]
    with pytest.raises(AuthError, match="sub"):
        TokenVerifier(s).verify(_hs_token("k" * 32, sub="acct_a/svc"))
    assert TokenVerifier(s).verify(_hs_token("k" * 32, sub="a/b", merchant="acct_a")).client == "acct_a/a/b"


def test_clients_and_customers_of_two_merchants_never_meet() -> None:
    assert tenant_client(DEFAULT_MERCHANT, "svc") == "svc"
    assert tenant_client("acct_a", "svc") != tenant_client("acct_b", "svc")
    assert customer_ref(DEFAULT_MERCHANT, "cus_1") == ":cus_1"  # the form used before tenancy
    assert customer_ref("acct_a", "cus_1") != customer_ref("acct_b", "cus_1")
    assert customer_ref("acct_a", "cus_1") != customer_ref(DEFAULT_MERCHANT, "@acct_a:cus_1"[1:])
    assert check_merchant_id("acct_1Nv0-x") == "acct_1Nv0-x"


def test_the_api_answers_403_merchant_required(tmp_path: Path) -> None:
    verifier = _issuer(tmp_path)
    app = FastAPI()

    @app.exception_handler(ApiError)
    async def _error(request: Request, exc: ApiError) -> Any:
        return exc.response()

    @app.get("/probe")
    async def probe(request: Request) -> dict[str, str]:
        return {"merchant": authenticate(request, verifier, ALL_ROLES).merchant}

    client = TestClient(app)
    refused = client.get("/probe", headers={"Authorization": f"Bearer {_issuer_token()}"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "merchant_required"
    ok = client.get("/probe", headers={"Authorization": f"Bearer {_issuer_token(merchant='acct_9')}"})
    assert ok.json() == {"merchant": "acct_9"}


def test_payments_token_takes_a_merchant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["token", "--role", "viewer", "--merchant", "acct_z"])
        bad = CliRunner().invoke(cli, ["token", "--role", "viewer", "--merchant", "no/slash"])
        principal = TokenVerifier(get_settings()).verify(result.output.strip().splitlines()[-1])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert principal.merchant == "acct_z"
    assert bad.exit_code == 2
