"""Merchant webhooks: no URL without a secret, https except to this machine."""

from __future__ import annotations

import pytest

from engine.adapters.notifier import webhook_target_problem


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        (None, None),
        ("https://merchant.example/hooks", "whsec_x"),
        ("http://127.0.0.1:9000/hook", "whsec_x"),
        ("http://localhost:9000/hook", "whsec_x"),
        ("http://[::1]:9000/hook", "whsec_x"),
    ],
)
def test_accepted_targets(url: str | None, secret: str | None) -> None:
    assert webhook_target_problem(url, secret) is None


@pytest.mark.parametrize(
    ("url", "secret", "says"),
    [
        ("https://merchant.example/hooks", None, "unsigned"),
        ("http://merchant.example/hooks", "whsec_x", "https://"),
        ("ftp://merchant.example/hooks", "whsec_x", "https://"),
        ("http://127.0.0.1.evil.example/hook", "whsec_x", "https://"),
    ],
)
def test_refused_targets(url: str, secret: str | None, says: str) -> None:
    problem = webhook_target_problem(url, secret)
    assert problem is not None and says in problem


def test_the_worker_refuses_to_start_with_a_url_and_no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from cli.main import cli
    from config.settings import get_settings

    monkeypatch.setenv("PAYMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PAYMENTS_MERCHANT_WEBHOOK_URL", "https://merchant.example/hooks")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["worker"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "unsigned" in result.output
