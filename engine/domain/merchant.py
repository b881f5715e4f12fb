"""Merchants (tenants): the owner of every job, subscription and Stripe customer the API shows.

A merchant id comes from the bearer token's ``merchant`` claim (engine/adapters/auth.py).  A token of the local
stack's shared secret without the claim acts for :data:`DEFAULT_MERCHANT`, which also owns every row made before
migration 0015, every job an upstream system put on a queue itself, and every webhook job.
"""

from __future__ import annotations

import re

#: The merchant of a shared-secret token without a ``merchant`` claim, and of rows made before tenancy existed.
DEFAULT_MERCHANT = "default"
#: What a merchant id may be (a Stripe account id ``acct_1Nv…`` fits): no separator that could join two ids.
_MERCHANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_merchant_id(value: object) -> str:
    """``value`` when it is a valid merchant id.  Raises :class:`ValueError` otherwise (not a string, empty, longer
    than 64 characters, or a character outside ``A-Z a-z 0-9 _ -``)."""
    if not isinstance(value, str) or not _MERCHANT_ID.match(value):
        raise ValueError("a merchant id is 1 to 64 characters of A-Z, a-z, 0-9, _ and -")
    return value


def tenant_client(merchant: str, sub: str) -> str:
    """The client an idempotency key and a rate-limit bucket belong to: the subject within its merchant.

    The default merchant's clients are the bare subject (the form saved before tenancy, so keys in flight at the
    upgrade still replay); another merchant's are ``<merchant>/<sub>``.  The verifier refuses a default-merchant
    subject containing ``/``, and a merchant id never contains one, so two (merchant, subject) pairs never share a
    client.
    """
    return sub if merchant == DEFAULT_MERCHANT else f"{merchant}/{sub}"


def customer_ref(merchant: str, customer_id: str) -> str:
    """The suffix naming ``merchant``'s customer ``customer_id`` in the Stripe customer mapping (the Redis key
    ``stripe_customer<ref>`` and the creation's idempotency key ``customer<ref>``).

    The default merchant keeps the form used before tenancy (``:<id>``), so its customers keep their Stripe
    customer; another merchant's is ``@<merchant>:<id>``.  The first character tells the two forms apart and a
    merchant id holds no ``:``, so two (merchant, customer) pairs never share a Stripe customer.
    """
    return f":{customer_id}" if merchant == DEFAULT_MERCHANT else f"@{merchant}:{customer_id}"
