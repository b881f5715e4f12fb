"""The verifier's cache of verified tokens: served until the token's ``exp`` (plus the leeway) and at most
``TOKEN_CACHE_SECONDS``; keyed by the whole token; refusals never cached."""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest

from config.settings import Settings
from engine.adapters import auth
from engine.adapters.auth import AuthError, Principal, TokenVerifier

SECRET = "c" * 40


class CountingVerifier(TokenVerifier):
    """Counts the signature checks (the calls the cache saves)."""

    checks = 0

    def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        self.checks += 1
        return super()._verify_uncached(token)


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, jwt={"secret": SECRET})  # type: ignore[arg-type]


def _token(ttl: int = 300, **extra: object) -> str:
    now = int(time.time())
    claims = {"sub": "svc", "role": "payment_operator", "aud": "payments-engine", "iat": now, "exp": now + ttl}
    return jwt.encode({**claims, **extra}, SECRET, "HS256")


def test_a_token_is_checked_once_then_served_from_the_cache(tmp_path: Path) -> None:
    verifier = CountingVerifier(_settings(tmp_path))
    token = _token()
    assert [verifier.verify(token).sub for _ in range(5)] == ["svc"] * 5
    assert verifier.checks == 1


def test_the_cache_forgets_a_token_after_a_minute(tmp_path: Path) -> None:
    now = [time.time()]
    verifier = CountingVerifier(_settings(tmp_path), clock=lambda: now[0])
    token = _token()
    verifier.verify(token)
    now[0] += auth.TOKEN_CACHE_SECONDS - 1
    verifier.verify(token)
    assert verifier.checks == 1
    now[0] += 2
    verifier.verify(token)
    assert verifier.checks == 2


def test_an_expired_token_is_refused_although_it_was_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No leeway, so that the token expires within the test (the cache keeps it until exp + leeway).
    monkeypatch.setattr(auth, "LEEWAY_SECONDS", 0)
    verifier = TokenVerifier(_settings(tmp_path))
    token = _token(ttl=1)
    assert verifier.verify(token).sub == "svc"
    time.sleep(2.1)
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token)


def test_an_altered_token_is_not_served_from_the_cache(tmp_path: Path) -> None:
    verifier = TokenVerifier(_settings(tmp_path))
    token = _token()
    verifier.verify(token)
    header, claims, signature = token.split(".")
    forged_claims = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(claims).replace(b"payment_operator", b"payment_admin__")
    ).decode()
    for forged in (f"{header}.{forged_claims}.{signature}", f"{header}.{claims}.{signature[:-2]}AA"):
        with pytest.raises(AuthError):
            verifier.verify(forged)


def test_a_refused_token_is_not_cached(tmp_path: Path) -> None:
    verifier = CountingVerifier(_settings(tmp_path))
    bad = _token(role="root")
    for _ in range(2):
        with pytest.raises(AuthError, match="role"):
            verifier.verify(bad)
    assert verifier.checks == 2


def test_the_cache_keeps_at_most_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "TOKEN_CACHE_SIZE", 3)
    verifier = CountingVerifier(_settings(tmp_path))
    tokens = [_token(sub=f"svc-{i}") for i in range(4)]
    for token in tokens:
        verifier.verify(token)
    verifier.verify(tokens[3])  # still cached
    verifier.verify(tokens[0])  # the oldest was forgotten
    assert verifier.checks == 5
