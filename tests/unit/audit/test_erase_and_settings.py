"""Pseudonymisation of personal values, and what a configuration record may hold."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.audit.erase import ERASED_NAME, pseudonym, scrub
from engine.audit.hooks import non_secret
from engine.audit.ship import object_key, retain_until


def test_scrub_replaces_emails_everywhere_and_names_of_customers_only() -> None:
    email = pseudonym("cus_1")
    value = {
        "customer": {"id": "cus_1", "email": "anna@example.de", "name": "Anna Schmidt", "country": "DE"},
        "plan": {"name": "pro"},
        "charge": {"billing_details": {"name": "Anna Schmidt"}, "receipt_email": "anna@example.de"},
        "items": [{"email": "anna@example.de"}],
    }
    out = scrub(value, email)
    assert out["customer"] == {"id": "cus_1", "email": email, "name": ERASED_NAME, "country": "DE"}
    assert out["plan"] == {"name": "pro"}
    assert out["charge"] == {"billing_details": {"name": ERASED_NAME}, "receipt_email": email}
    assert out["items"] == [{"email": email}]
    assert value["customer"]["email"] == "anna@example.de"  # the input is left alone
    assert scrub(out, email) == out  # a second erasure changes nothing


def test_the_pseudonym_is_stable_and_reveals_nothing() -> None:
    assert pseudonym("cus_1") == pseudonym("cus_1") != pseudonym("cus_2")
    assert "cus_1" not in pseudonym("cus_1") and pseudonym("cus_1").endswith("@erased.invalid")


def test_configuration_records_hold_no_secret() -> None:
    view = {
        "redis": {"url": "redis://:hunter2@redis:6379/0"},
        "notify": {"webhook_url": "https://user:pw@merchant.example/hook", "secret": "whsec_x"},
        "auth": {"jwt_secret": "s3cret", "issuer": "me"},
        "http": {"port": 8000},
    }
    out = non_secret(view)
    flat = repr(out)
    assert "hunter2" not in flat and "pw@" not in flat and "whsec_x" not in flat and "s3cret" not in flat
    assert out["http"] == {"port": 8000} and out["auth"]["issuer"] == "me"


def test_objects_are_keyed_by_hour_and_range_and_kept_seven_years() -> None:
    now = datetime(2028, 2, 29, 13, 5, tzinfo=UTC)
    assert object_key(now, 1, 57) == "records/2028/02/29/13/000000000001-000000000057.jsonl"
    assert retain_until(now) == datetime(2035, 2, 28, 13, 5, tzinfo=UTC)
