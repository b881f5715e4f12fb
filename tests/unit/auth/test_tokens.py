"""Bearer tokens: minting, verification, rotation, refusals."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

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
    now = int(time.time())
    claims = {"sub": "x", "role": "root", "aud": "payments-engine", "iat": now, "exp": now + 60}
    forged = jwt.encode(claims, "k" * 32, algorithm="HS256")
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
    now = int(time.time())
    base = {"sub": "a", "role": "payment_admin", "aud": "payments-engine", "iat": now}
    expired = jwt.encode({**base, "iat": now - 100, "exp": now - 60}, secret, "HS256")
    no_exp = jwt.encode(base, secret, "HS256")
    no_iat = jwt.encode({**{k: v for k, v in base.items() if k != "iat"}, "exp": now + 60}, secret, "HS256")
    no_aud = jwt.encode({**{k: v for k, v in base.items() if k != "aud"}, "exp": now + 60}, secret, "HS256")
    other_aud = jwt.encode({**base, "aud": "someone-else", "exp": now + 60}, secret, "HS256")
    wrong = jwt.encode({**base, "exp": now + 60}, "w" * 40, "HS256")
    unsigned = jwt.encode({**base, "exp": now + 60}, None, "none")
    for bad in (expired, no_exp, no_iat, no_aud, other_aud, wrong, unsigned, "not.a.token"):
        with pytest.raises(AuthError):
            verifier.verify(bad)


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
    assert bad.exit_code == 2 and "Invalid value for '--role'" in bad.output
