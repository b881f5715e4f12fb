"""The idempotency key store, with a controlled clock."""

from __future__ import annotations

from sandbox.stripe_sim.clock import Clock
from sandbox.stripe_sim.idempotency import IdempotencyStore, Outcome, SavedResponse, fingerprint

RESPONSE = SavedResponse(200, {"Content-Type": "application/json"}, b'{"id": "pi_1"}', "req_1")


def test_first_use_then_in_flight_then_replay() -> None:
    store = IdempotencyStore(Clock())
    digest = fingerprint("POST", "/v1/payment_intents", {"amount": "100"})
    assert store.begin("sk_test_a", "k", digest).outcome is Outcome.NEW
    assert store.begin("sk_test_a", "k", digest).outcome is Outcome.IN_FLIGHT
    store.complete("sk_test_a", "k", RESPONSE)
    again = store.begin("sk_test_a", "k", digest)
    assert again.outcome is Outcome.REPLAY and again.saved == RESPONSE


def test_other_parameters_mismatch_even_in_flight() -> None:
    store = IdempotencyStore(Clock())
    store.begin("s", "k", fingerprint("POST", "/v1/x", {"a": "1"}))
    assert store.begin("s", "k", fingerprint("POST", "/v1/x", {"a": "2"})).outcome is Outcome.MISMATCH
    assert store.begin("s", "k", fingerprint("POST", "/v1/y", {"a": "1"})).outcome is Outcome.MISMATCH


def test_fingerprint_ignores_key_order_only() -> None:
    assert fingerprint("POST", "/p", {"a": "1", "b": {"c": "2"}}) == fingerprint(
        "post", "/p", {"b": {"c": "2"}, "a": "1"}
    )
    assert fingerprint("POST", "/p", {"a": "1"}) != fingerprint("POST", "/p", {"a": "1", "b": ""})


def test_release_frees_the_key() -> None:
    store = IdempotencyStore(Clock())
    store.begin("s", "k", "d1")
    store.release("s", "k")
    assert store.begin("s", "k", "d2").outcome is Outcome.NEW


def test_scopes_are_separate() -> None:
    store = IdempotencyStore(Clock())
    store.begin("s1", "k", "d1")
    assert store.begin("s2", "k", "d2").outcome is Outcome.NEW


def test_saved_answers_expire_after_24_hours() -> None:
    clock = Clock()
    store = IdempotencyStore(clock)
    store.begin("s", "k", "d1")
    store.complete("s", "k", RESPONSE)
    clock.advance(24 * 3600 - 1)
    assert store.begin("s", "k", "d1").outcome is Outcome.REPLAY
    clock.advance(1)
    assert store.begin("s", "k", "d2").outcome is Outcome.NEW


def test_persistence_hooks_are_called() -> None:
    saved: list[str] = []
    forgotten: list[str] = []
    store = IdempotencyStore(Clock())
    store.on_save = lambda scope, key, fp, created, response: saved.append(key)
    store.on_forget = lambda scope, key: forgotten.append(key)
    store.begin("s", "a", "d")
    store.complete("s", "a", RESPONSE)
    store.begin("s", "b", "d")
    store.release("s", "b")
    assert saved == ["a"] and forgotten == ["b"]
