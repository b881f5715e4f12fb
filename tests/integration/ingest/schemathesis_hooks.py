"""schemathesis hooks for the live-ingest run (``test_schemathesis.py``).

Every request that creates a job takes an ``Idempotency-Key``, and the same key with another body is, by
contract, 422 ``idempotency_key_reused``.  schemathesis draws keys from the header's pattern, so it draws the same
short keys ("0", "a") again and again with other bodies: a valid key gets a unique suffix here, as a real client's
keys are unique.  An invalid key (a negative test of the header) is left as drawn.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_COUNTER = itertools.count()


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _VALID_KEY.match(key):
        # A new dict: cases may share one, and a case testing the header's absence must not get it back.
        case.headers = {**headers, "Idempotency-Key": f"{key}.st{next(_COUNTER)}"}
