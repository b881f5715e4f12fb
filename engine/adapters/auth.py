"""Bearer tokens, in one of two modes (docs/api.md, "Authentication").

* **Issuer** (production): ``PAYMENTS_JWT_ISSUER`` is set.  Only that identity provider's asymmetric tokens
  (RS256/ES256) are accepted, their key chosen by the token's ``kid`` among ``PAYMENTS_JWT_PUBLIC_KEYS`` (PEMs by
  kid) or the keys at ``PAYMENTS_JWT_JWKS_URL``; ``iss`` and ``aud`` are required; HS256 is refused whatever
  secret is configured.
* **Shared secret** (the local stack, tests, a deployment without an identity provider): HS256 with
  ``PAYMENTS_JWT_SECRET`` (several, comma-separated, for rotation), else the secret the engine keeps under the
  data directory so that ``payments token`` and the local ingest agree.  ``aud`` is required.

In both modes a token carries ``sub``, ``role``, ``iat`` and ``exp``, and lives at most
``PAYMENTS_JWT_MAX_LIFETIME_SECONDS`` (15 minutes by default: an access token, not a credential).

The ``merchant`` claim names the tenant the caller acts for: every API query is filtered by it.  In issuer mode it
is required (:class:`MerchantRequired`); a shared-secret token without it acts for the local stack's default
merchant (:data:`engine.domain.merchant.DEFAULT_MERCHANT`).  No token sees every merchant: operators on call read
across merchants with the CLI, which goes to the database directly.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from config.settings import Settings
from engine.domain.merchant import DEFAULT_MERCHANT, check_merchant_id, tenant_client
from engine.errors import PaymentsError

ROLES = ("payment_admin", "payment_operator", "payment_viewer", "payment_support")
ALIASES = {role.removeprefix("payment_"): role for role in ROLES}
SECRET_FILE_NAME = "jwt-secret"
#: The lifetime ``payments token`` gives by default: the longest any token may have unless configured otherwise.
DEFAULT_TTL_SECONDS = 900
#: The ``iss`` of the tokens ``payments token`` mints for the local stack.
LOCAL_ISSUER = "payments-engine-local"
#: Asymmetric algorithms an identity provider's tokens may use (never HS*: a public key is no secret).
ISSUER_ALGORITHMS = ("RS256", "ES256")
#: Clock skew tolerated on ``exp``/``iat`` between the issuer and this host.
LEEWAY_SECONDS = 30
#: How long a verified token is answered from the verifier's cache before its signature is checked again: never
#: past its ``exp`` (plus the leeway), and at most this long, so a key the issuer withdrew from its JWKS stops being
#: honoured through the cache no later than through PyJWKClient's own five-minute cache of the key set.
TOKEN_CACHE_SECONDS = 60.0
#: The most verified tokens one process remembers (the oldest is forgotten first).
TOKEN_CACHE_SIZE = 4096


class AuthError(PaymentsError):
    """A token is missing, malformed, expired, wrongly signed, too long-lived or carries no known role."""


class MerchantRequired(AuthError):
    """A valid token of the identity provider that names no merchant (issuer mode): it may act for nobody."""


class AuthConfigError(PaymentsError):
    """The token settings contradict each other (an issuer without keys); raised when the verifier is built."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject, role and merchant (every query the API makes is filtered by it)."""

    sub: str
    role: str
    merchant: str = DEFAULT_MERCHANT

    @property
    def client(self) -> str:
        """Whom idempotency keys and rate-limit buckets belong to: the subject within its merchant."""
        return tenant_client(self.merchant, self.sub)


def normalise_role(role: str) -> str:
    """``operator`` → ``payment_operator``; full names pass.  Raises :class:`ValueError` for an unknown role."""
    full = ALIASES.get(role, role)
    if full not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)} (or {', '.join(ALIASES)})")
    return full


def hs256_secrets(settings: Settings, *, create: bool = False) -> list[str]:
    """The HS256 secrets in force: the configured list, else the one kept under the data directory.

    With ``create`` a missing data-directory secret is made (owner-readable only, from creation).  Returns ``[]``
    when there is none and ``create`` is false, and always when an issuer is configured.
    """
    if settings.jwt.issuer:
        return []
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
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    # Owner-only from the first byte (a chmod after writing leaves a window in which others may read it).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value)
    try:
        # Link, not rename: when two processes race, the first secret wins and both read it back.
        path.hardlink_to(tmp)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def local_minting_refusal(settings: Settings) -> str | None:
    """Why ``payments token`` must not mint with these settings (``None``: it may).

    It mints only with the local stack's own data-directory secret: a deployment's tokens come from its identity
    provider, or from whoever holds its shared secret, never from a CLI on some host that happens to see it.
    """
    if settings.jwt.issuer:
        return f"tokens for this deployment come from its identity provider ({settings.jwt.issuer})"
    if settings.jwt.secret is not None:
        return "PAYMENTS_JWT_SECRET is set: `payments token` mints only for the local stack's own secret"
    return None


def mint(
    settings: Settings,
    role: str,
    sub: str = "dev",
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    merchant: str = DEFAULT_MERCHANT,
) -> str:
    """A signed HS256 token for the shared-secret mode (the local stack and tests), acting for ``merchant``.

    Raises :class:`ValueError` for an unknown role, an invalid merchant id, a ttl ≤ 0 or above
    ``jwt.max_lifetime_seconds``, or when an issuer is configured (the engine never signs tokens its ingest would
    then refuse).
    """
    if settings.jwt.issuer:
        raise ValueError(local_minting_refusal(settings))
    if ttl_seconds <= 0:
        raise ValueError("ttl must be positive")
    if ttl_seconds > settings.jwt.max_lifetime_seconds:
        raise ValueError(
            f"ttl {ttl_seconds}s is above the longest lifetime accepted ({settings.jwt.max_lifetime_seconds}s, "
            "PAYMENTS_JWT_MAX_LIFETIME_SECONDS)"
        )
    now = int(time.time())
    claims = {
        "iss": LOCAL_ISSUER,
        "aud": settings.jwt.audience,
        "sub": sub,
        "role": normalise_role(role),
        "merchant": check_merchant_id(merchant),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, hs256_secrets(settings, create=True)[0], algorithm="HS256")


class TokenVerifier:
    """Checks bearer tokens against the configured keys.  Build once per process; :meth:`verify` is cheap (a JWKS
    is fetched on first use and cached for five minutes, refreshed early for an unknown ``kid``).

    A token that verified is remembered, keyed by the whole token (header, claims and signature: a token altered
    in any byte is another key and is verified afresh), until its ``exp`` plus the leeway and at most
    :data:`TOKEN_CACHE_SECONDS`; a client sends the same token with every request, so the signature is checked
    about once a minute instead of once a request.  Refusals are never cached.  ``clock`` is the wall clock the
    cache's expiry is read on (``exp`` is wall-clock time).

    Raises :class:`AuthConfigError` when an issuer is configured without any key source.
    """

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        cfg = settings.jwt
        self._clock = clock
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._issuer = cfg.issuer
        self._audience = cfg.audience
        self._max_lifetime = cfg.max_lifetime_seconds
        self._public_keys = dict(cfg.public_keys)
        self._jwks = jwt.PyJWKClient(cfg.jwks_url, timeout=5) if cfg.issuer and cfg.jwks_url else None
        if cfg.issuer and not (self._public_keys or self._jwks):
            raise AuthConfigError(
                "PAYMENTS_JWT_ISSUER is set but no key is: set PAYMENTS_JWT_JWKS_URL or PAYMENTS_JWT_PUBLIC_KEYS"
            )
        self._hs_secrets = [] if cfg.issuer else hs256_secrets(settings, create=True)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token (from the cache when it verified less than a minute ago and has not
        expired since).

        Raises:
            AuthError: malformed; an algorithm the mode does not accept (``none`` and HS256 in issuer mode
                included); an unknown ``kid``; a bad signature; ``exp``, ``iat``, ``sub`` or ``aud`` missing (and
                ``iss`` in issuer mode) or wrong; expired; a lifetime above the maximum; an unknown ``role``; a
                ``merchant`` that is not a merchant id; a default-merchant ``sub`` containing ``/``.
            MerchantRequired: (an :class:`AuthError`) an issuer's token without ``merchant``.
        """
        now = self._clock()
        with self._cache_lock:
            hit = self._cache.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        principal, exp = self._verify_uncached(token)
        until = min(exp + LEEWAY_SECONDS, now + TOKEN_CACHE_SECONDS)
        with self._cache_lock:
            self._cache[token] = (principal, until)
            self._cache.move_to_end(token)
            while len(self._cache) > TOKEN_CACHE_SIZE:
                self._cache.popitem(last=False)
        return principal

    def _verify_uncached(self, token: str) -> tuple[Principal, float]:
        """The principal of a valid token and its ``exp``, checked against the keys.  Raises as :meth:`verify`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}") from exc
        alg = header.get("alg")
        claims = self._issuer_claims(token, header) if self._issuer else self._shared_secret_claims(token, alg)
        lifetime = int(claims["exp"]) - int(claims["iat"])
        if lifetime > self._max_lifetime:
            raise AuthError(f"token lifetime {lifetime}s is above the {self._max_lifetime}s accepted")
        role = claims.get("role")
        if role not in ROLES:
            raise AuthError(f"token role {role!r} is not one of {', '.join(ROLES)}")
        return Principal(sub=str(claims["sub"]), role=role, merchant=self._merchant(claims)), float(claims["exp"])

    def _merchant(self, claims: dict[str, Any]) -> str:
        """The merchant the token acts for (see the module's docstring)."""
        merchant = claims.get("merchant")
        if merchant is None:
            if self._issuer:
                raise MerchantRequired("the token names no merchant (claim `merchant`): it may act for none")
            merchant = DEFAULT_MERCHANT
        try:
            check_merchant_id(merchant)
        except ValueError as exc:
            raise AuthError(f"token merchant {merchant!r}: {exc}") from exc
        if merchant == DEFAULT_MERCHANT and "/" in str(claims["sub"]):
            # Another merchant's clients are "<merchant>/<sub>" (engine/domain/merchant.py): never the same.
            raise AuthError("a default-merchant token's sub may not contain '/'")
        return str(merchant)

    def _issuer_claims(self, token: str, header: dict[str, Any]) -> dict[str, Any]:
        alg = header.get("alg")
        if alg not in ISSUER_ALGORITHMS:
            raise AuthError(f"token algorithm {alg!r} is not accepted (the issuer signs with {ISSUER_ALGORITHMS})")
        kid = header.get("kid")
        key: Any
        if isinstance(kid, str) and kid in self._public_keys:
            key = self._public_keys[kid]
        elif self._jwks is not None:
            try:
                key = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:  # PyJWKClientError: unknown kid, unreachable JWKS
                raise AuthError(f"no key of the issuer for kid {kid!r}: {exc}") from exc
        else:
            raise AuthError(f"no key of the issuer for kid {kid!r}")
        return self._decode(token, key, [alg], require=["exp", "iat", "sub", "iss", "aud"], issuer=self._issuer)

    def _shared_secret_claims(self, token: str, alg: Any) -> dict[str, Any]:
        if alg != "HS256" or not self._hs_secrets:
            raise AuthError(f"token algorithm {alg!r} is not accepted")
        last: Exception | None = None
        for key in self._hs_secrets:
            try:
                return self._decode(token, key, ["HS256"], require=["exp", "iat", "sub", "aud"], issuer=None)
            except _WrongKey as exc:
                last = exc
        raise AuthError(f"invalid token: {last}")

    def _decode(
        self, token: str, key: Any, algorithms: list[str], *, require: list[str], issuer: str | None
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": require},
            )
        except jwt.InvalidSignatureError as exc:
            raise _WrongKey(str(exc)) from exc
        except jwt.PyJWTError as exc:
            raise AuthError(str(exc)) from exc
        return claims


class _WrongKey(AuthError):
    """The signature does not match this key (the next rotated secret may still match)."""
