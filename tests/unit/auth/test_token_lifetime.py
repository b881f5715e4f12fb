"""Token lifetimes: at most ``jwt.max_lifetime_seconds`` for every token, and `payments token` only for the local
stack's own secret."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from cli.main import cli
from config.settings import Settings, get_settings
from engine.adapters.auth import AuthError, TokenVerifier, mint


def _settings(tmp_path: Path, **kwargs: object) -> Settings:
    return Settings(data_dir=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_a_hundred_year_token_is_refused_even_when_correctly_signed(tmp_path: Path) -> None:
    secret = "s" * 40
    now = int(time.time())
    century = {
        "sub": "a",
        "role": "payment_admin",
        "aud": "payments-engine",
        "iat": now,
        "exp": now + 100 * 365 * 86400,
    }
    with pytest.raises(AuthError, match="lifetime"):
        TokenVerifier(_settings(tmp_path, jwt={"secret": secret})).verify(jwt.encode(century, secret, "HS256"))


def test_the_lifetime_limit_is_a_setting(tmp_path: Path) -> None:
    s = _settings(tmp_path, jwt={"max_lifetime_seconds": 3600})
    assert TokenVerifier(s).verify(mint(s, "viewer", ttl_seconds=3600)).role == "payment_viewer"
    with pytest.raises(ValueError, match="above the longest lifetime"):
        mint(_settings(tmp_path), "viewer", ttl_seconds=3600)


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_the_token_command_refuses_a_lifetime_above_the_maximum(cli_env: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["token", "--role", "admin", "--ttl", str(100 * 365 * 86400)])
    assert result.exit_code == 2 and "longest lifetime" in result.output


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PAYMENTS_JWT_SECRET", "production-secret-" + "p" * 30, "PAYMENTS_JWT_SECRET is set"),
        ("PAYMENTS_JWT_ISSUER", "https://id.example.com/", "identity provider"),
    ],
)
def test_the_token_command_mints_only_for_the_local_stack(
    cli_env: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    cli_env.setenv(variable, value)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["token", "--role", "operator"])
    assert result.exit_code == 2 and says in result.output
    assert "eyJ" not in result.output  # no token printed
