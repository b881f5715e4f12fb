"""Bearer tokens: minting, verification, rotation, refusals."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cli.main import cli
from config.settings import Settings
from engine.adapters.auth import AuthError, TokenVerifier, mint, normalise_role


def _settings(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(data_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_minted_token_verifies_with_alias_roles(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    token = mint(s, "operator", sub="upstream-1", ttl_seconds=60)
    principal = TokenVerifier(s).verify(token)
    assert (principal.sub, principal.role) == ("upstream-1", "payment_operator")
    # The secret was made once under the data directory and is private.
    secret_file = tmp_path / "jwt-secret"
    assert secret_file.stat().st_mode & 0o077 == 0
    assert TokenVerifier(_settings(tmp_path)).verify(mint(_settings(tmp_path), "payment_admin")).role == "payment_admin"


def test_unknown_role_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        normalise_role("root")
    forged = jwt.encode({"sub": "x", "role": "root", "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256")
    with pytest.raises(AuthError, match="role"):
        TokenVerifier(_settings(tmp_path, jwt={"secret": "k" * 32})).verify(forged)


def test_rotation_first_secret_signs_all_verify(tmp_path: Path) -> None:
    old, new = "old-secret-" + "o" * 32, "new-secret-" + "n" * 32
    before = _settings(tmp_path, jwt={"secret": old})
    during = _settings(tmp_path, jwt={"secret": f"{new},{old}"})
    after = _settings(tmp_path, jwt={"secret": new})
    old_token = mint(before, "viewer")
    assert TokenVerifier(during).verify(old_token).role == "payment_viewer"
    assert TokenVerifier(during).verify(mint(during, "viewer")).role == "payment_viewer"
    with pytest.raises(AuthError):
        TokenVerifier(after).verify(old_token)


def test_expired_missing_exp_alg_none_and_wrong_key_are_refused(tmp_path: Path) -> None:
    secret = "s" * 40
    s = _settings(tmp_path, jwt={"secret": secret})
    verifier = TokenVerifier(s)
    expired = jwt.encode({"sub": "a", "role": "payment_admin", "exp": int(time.time()) - 10}, secret, "HS256")
    no_exp = jwt.encode({"sub": "a", "role": "payment_admin"}, secret, "HS256")
    wrong = jwt.encode({"sub": "a", "role": "payment_admin", "exp": int(time.time()) + 60}, "w" * 40, "HS256")
    unsigned = jwt.encode({"sub": "a", "role": "payment_admin", "exp": int(time.time()) + 60}, None, "none")
    for bad in (expired, no_exp, wrong, unsigned, "not.a.token"):
        with pytest.raises(AuthError):
            verifier.verify(bad)


def test_rs256_with_public_key(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    s = _settings(tmp_path, jwt={"public_key": public})
    token = jwt.encode({"sub": "idp", "role": "payment_support", "exp": int(time.time()) + 60}, key, "RS256")
    assert TokenVerifier(s).verify(token).role == "payment_support"
    # An HS256 token signed with the public key text (the classic confusion attack) is refused.
    confused = jwt.encode({"sub": "x", "role": "payment_admin", "exp": int(time.time()) + 60}, "p" * 40, "HS256")
    with pytest.raises(AuthError):
        TokenVerifier(_settings(tmp_path / "other", jwt={"public_key": public, "secret": "q" * 40})).verify(confused)


def test_token_command_prints_the_token_alone_on_its_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.settings import get_settings

    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["token", "--role", "operator", "--sub", "erp", "--ttl", "120"])
        bad = CliRunner().invoke(cli, ["token", "--role", "wizard"])
        principal = TokenVerifier(get_settings()).verify(result.output.strip().splitlines()[-1])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0
    assert (principal.sub, principal.role) == ("erp", "payment_operator")
    assert bad.exit_code == 2 and "unknown role" in bad.output
