"""The two caller-chosen headers the ingest stores and logs: ``X-Request-ID`` and ``Idempotency-Key``.

Both end up in the job row, the SQS message and every log line, so both are held to ``[A-Za-z0-9._:-]{1,255}``
and scanned for card numbers (``engine/domain/pan.py``) before anything is written; the offending value is never
echoed (``docs/api.md``, "Errors").  Digits glued to a letter are left out of the scan (see ``_GLUED_DIGITS``).
"""

from __future__ import annotations

import re

from engine.domain.pan import find_pan
from engine.ingest.errors import ApiError

MAX_LENGTH = 255
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,255}")
# Digits glued to a letter belong to a word (hex ids, UUIDs), not to a card number: without this, about one random
# UUID key in 500 holds 13+ digits that pass Luhn by chance and would be refused.  A card number set apart by any
# of ``. _ : -`` or standing alone is still found.
_GLUED_DIGITS = re.compile(r"(?<=[A-Za-z])[0-9](?:[0-9.\-]*[0-9])?|[0-9](?:[0-9.\-]*[0-9])?(?=[A-Za-z])")

REQUEST_ID = "X-Request-ID"
IDEMPOTENCY_KEY = "Idempotency-Key"


def check_token(value: str, header: str, invalid_code: str) -> str:
    """``value`` when it is 1–255 characters of ``[A-Za-z0-9._:-]`` and holds no card number.

    Raises :class:`ApiError` 400 ``invalid_code`` for another shape, 400 ``pan_detected`` for a card number
    (both name ``header`` as the param, never the value).
    """
    if not _TOKEN.fullmatch(value):
        raise ApiError(
            400,
            invalid_code,
            f"{header} must be 1 to {MAX_LENGTH} characters of letters, digits, '.', '_', ':' and '-'.",
            param=header,
        )
    if find_pan(_GLUED_DIGITS.sub("x", value)) is not None:
        raise ApiError(
            400,
            "pan_detected",
            f"{header} looks like a card number; card numbers must never be sent here.",
            param=header,
        )
    return value


def check_request_id(value: str | None) -> str | None:
    """The caller's ``X-Request-ID`` (``None`` when absent).  Raises :class:`ApiError` 400 ``request_id_invalid``
    or ``pan_detected``."""
    if value is None:
        return None
    return check_token(value, REQUEST_ID, "request_id_invalid")


def check_idempotency_key(value: str | None) -> str:
    """The ``Idempotency-Key``.  Raises :class:`ApiError` 400 ``idempotency_key_missing`` when absent or empty,
    400 ``idempotency_key_invalid`` for another shape, 400 ``pan_detected`` for a card number."""
    if not value:
        raise ApiError(
            400,
            "idempotency_key_missing",
            f"An {IDEMPOTENCY_KEY} header of 1 to {MAX_LENGTH} characters is required for this request.",
            param=IDEMPOTENCY_KEY,
        )
    return check_token(value, IDEMPOTENCY_KEY, "idempotency_key_invalid")
