"""Bearer tokens: HS256 with ``PAYMENTS_JWT_SECRET`` (several, comma-separated, for rotation) or RS256 with
``PAYMENTS_JWT_PUBLIC_KEY``.  Without a configured secret the engine makes one and keeps it under the data
directory, so `payments token` and the server agree.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from config.settings import Settings
from engine.errors import PaymentsError

ROLES = ("payment_admin", "payment_operator", "payment_viewer", "payment_support")
ALIASES = {role.removeprefix("payment_"): role for role in ROLES}
SECRET_FILE_NAME = "jwt-secret"
DEFAULT_TTL_SECONDS = 86400


class AuthError(PaymentsError):
    """A token is missing, malformed, expired, wrongly signed or carries no known role."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject (idempotency keys are scoped by it) and role."""

    sub: str
    role: str


def normalise_role(role: str) -> str:
    """``operator`` → ``payment_operator``; full names pass.  Raises :class:`ValueError` for an unknown role."""
    full = ALIASES.get(role, role)
    if full not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)} (or {', '.join(ALIASES)})")
    return full


def hs256_secrets(settings: Settings, *, create: bool = False) -> list[str]:
    """The HS256 secrets in force: the configured list, else the one kept under the data directory.

    With ``create`` a missing data-directory secret is made (owner-readable only).  Returns ``[]`` when there is
    none and ``create`` is false.
    """
    if settings.jwt.secret is not None:
        return [s.strip() for s in settings.jwt.secret.get_secret_value().split(",") if s.strip()]
    path = settings.data_dir / SECRET_FILE_NAME
    if path.exists():
        return [path.read_text().strip()]
    if not create:
        return []
    return [_create_secret(path)]


def _create_secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value)
    tmp.chmod(0o600)
    try:
        # Link, not rename: when two processes race, the first secret wins and both read it back.
        path.hardlink_to(tmp)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def mint(settings: Settings, role: str, sub: str = "dev", ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    """A signed HS256 development token.  Raises :class:`ValueError` for an unknown role or ttl ≤ 0."""
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    claims = {"sub": sub, "role": normalise_role(role), "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, hs256_secrets(settings, create=True)[0], algorithm="HS256")


class TokenVerifier:
    """Checks bearer tokens against the configured keys.  Build once per process; :meth:`verify` is cheap."""

    def __init__(self, settings: Settings) -> None:
        self._hs_secrets = hs256_secrets(settings, create=True)
        self._public_key = settings.jwt.public_key

    def verify(self, token: str) -> Principal:
        """The principal of a valid token.

        Raises:
            AuthError: malformed, ``alg`` not HS256/RS256 (``none`` included), bad signature, no or past ``exp``,
                no ``sub``, or an unknown ``role``.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from exc
        alg = header.get("alg")
        if alg == "RS256" and self._public_key:
            keys: list[str] = [self._public_key]
        elif alg == "HS256" and self._hs_secrets:
            keys = self._hs_secrets
        else:
            raise AuthError(f"token algorithm {alg!r} is not accepted")
        last: Exception | None = None
        for key in keys:
            try:
                claims = jwt.decode(token, key, algorithms=[alg], options={"require": ["exp", "sub"]})
                break
            except jwt.InvalidSignatureError as exc:
                last = exc
            except jwt.PyJWTError as exc:
                raise AuthError(str(exc)) from exc
        else:
            raise AuthError(f"invalid token: {last}")
        role = claims.get("role")
        if role not in ROLES:
            raise AuthError(f"token role {role!r} is not one of {', '.join(ROLES)}")
        return Principal(sub=str(claims["sub"]), role=role)
