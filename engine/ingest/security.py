"""Authentication and role checks for ``/v1`` routes (401 ``unauthenticated`` before 403 ``forbidden``)."""

from __future__ import annotations

from fastapi import Request

from engine.adapters.auth import AuthError, MerchantRequired, Principal, TokenVerifier
from engine.ingest.errors import ApiError

ADMIN, OPERATOR, VIEWER, SUPPORT = "payment_admin", "payment_operator", "payment_viewer", "payment_support"
ALL_ROLES = (ADMIN, OPERATOR, VIEWER, SUPPORT)


def authenticate(request: Request, verifier: TokenVerifier, allowed: tuple[str, ...]) -> Principal:
    """The caller's principal when it holds one of ``allowed`` roles.

    Raises :class:`ApiError` 401 without a valid bearer token, 403 ``merchant_required`` when the token (of the
    identity provider) names no merchant, 403 ``forbidden`` when its role is not allowed.
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "Send a bearer token: Authorization: Bearer <JWT>.")
    # The rate limiter verified this request's token already (engine/ingest/ratelimit.py) and left the principal.
    verified = getattr(request.state, "principal", None)
    try:
        principal = verified if isinstance(verified, Principal) else verifier.verify(token.strip())
    except MerchantRequired as exc:
        raise ApiError(403, "merchant_required", f"The token is valid but acts for no merchant: {exc}.") from exc
    except AuthError as exc:
        raise ApiError(401, "unauthenticated", f"Invalid bearer token: {exc}") from exc
    if principal.role not in allowed:
        raise ApiError(403, "forbidden", f"Role {principal.role} may not do this (needs one of {', '.join(allowed)}).")
    return principal
