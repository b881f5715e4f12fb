"""Webhook signature checks: every configured secret is tried, stale signatures are told apart from forged ones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import Settings
from engine.adapters.stripe_webhooks import SECRET_FILE, configured_secrets
from pipelines.webhook.routes import SignatureRefused, object_id_of, verify_signature
from sandbox.stripe_sim.webhooks import signature_header

BODY = b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}'


def test_any_configured_secret_verifies() -> None:
    header = signature_header(BODY.decode(), "whsec_new")
    verify_signature(BODY, header, ["whsec_old", "whsec_new"])


def _header(kind: str) -> str | None:
    """Headers made at test time (ids must not depend on the clock: xdist workers compare collections)."""
    return {
        "other_secret": signature_header(BODY.decode(), "whsec_other"),
        "missing": None,
        "malformed": "t=abc",
        "stale": signature_header(BODY.decode(), "whsec_new", int(time.time()) - 301),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [("other_secret", "forged"), ("missing", "forged"), ("malformed", "forged"), ("stale", "stale")],
)
def test_refusals(kind: str, outcome: str) -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify_signature(BODY, _header(kind), ["whsec_old", "whsec_new"])
    assert refused.value.outcome == outcome


def test_a_changed_body_is_forged() -> None:
    header = signature_header(BODY.decode(), "whsec_new")
    with pytest.raises(SignatureRefused):
        verify_signature(BODY.replace(b"ch_1", b"ch_2"), header, ["whsec_new"])


def test_secrets_come_from_the_setting_and_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, stripe={"webhook_secrets": SecretStr(" whsec_a , whsec_b,")})
    assert configured_secrets(settings) == ["whsec_a", "whsec_b"]
    (tmp_path / SECRET_FILE).write_text("whsec_run\n")
    assert configured_secrets(settings) == ["whsec_a", "whsec_b", "whsec_run"]


def test_object_id_is_the_message_group() -> None:
    assert object_id_of({"data": {"object": {"id": "pi_1"}}}) == "pi_1"
    assert object_id_of({"data": {}}) is None
