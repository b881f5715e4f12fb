"""Stripe form decoding."""

from __future__ import annotations

import pytest

from sandbox.stripe_sim.errors import StripeError
from sandbox.stripe_sim.forms import decode_form, encode_form


def test_nested_keys_lists_and_appends() -> None:
    body = (
        "amount=100&metadata[job_id]=j1&metadata[note]=a%20b&payment_method_types[0]=card"
        "&expand[]=latest_charge&expand[]=customer&shipping[address][line1]=1+Main&items[1][id]=b&items[0][id]=a"
    )
    assert decode_form(body) == {
        "amount": "100",
        "metadata": {"job_id": "j1", "note": "a b"},
        "payment_method_types": ["card"],
        "expand": ["latest_charge", "customer"],
        "shipping": {"address": {"line1": "1 Main"}},
        "items": [{"id": "a"}, {"id": "b"}],
    }


def test_blank_values_are_kept_for_unsetting() -> None:
    assert decode_form(b"metadata[old]=&description=") == {"metadata": {"old": ""}, "description": ""}


def test_roundtrip_with_the_encoder() -> None:
    params = {"a": {"b": ["x", "y"], "c": {"d": "1"}}, "flag": True, "n": 5}
    assert decode_form(encode_form(params)) == {"a": {"b": ["x", "y"], "c": {"d": "1"}}, "flag": "true", "n": "5"}


@pytest.mark.parametrize("body", ["a=1&a[b]=2", "a[b]=2&a=1", "a]b=1", "[x]=1"])
def test_malformed_or_conflicting_keys_are_400(body: str) -> None:
    with pytest.raises(StripeError) as info:
        decode_form(body)
    assert info.value.status == 400 and info.value.type == "invalid_request_error"
