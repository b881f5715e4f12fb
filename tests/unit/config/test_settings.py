"""Settings: environment names, grouping, secrets masked, docs in step with the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from config.docs import markdown_table
from config.settings import Settings, mask_url_password

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("PAYMENTS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_match_the_documentation() -> None:
    s = Settings()
    assert s.aws.region == "eu-west-1"
    assert (s.http.port, s.metrics.port, s.stripe.sim_port, s.local.aws_port) == (8000, 9191, 12111, 4566)
    assert s.http.host == "127.0.0.1"
    assert s.seller.country == "IE" and s.vat.oss is True
    assert (s.retry.backoff_base_seconds, s.retry.backoff_max_seconds) == (5.0, 300.0)
    assert s.rate_limit_per_minute == 1000 and s.idempotency.ttl_seconds == 86400
    assert s.reconcile.after_seconds == 900 and s.dunning.schedule_days == "1,3,5"
    assert s.data_dir.is_absolute() and s.data_dir.name == "var"


def test_grouped_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_SQS_ENDPOINT_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("PAYMENTS_RETRY_BACKOFF_BASE_SECONDS", "0.25")
    monkeypatch.setenv("PAYMENTS_RATE_LIMIT_PER_MINUTE", "0")
    monkeypatch.setenv("PAYMENTS_QUEUE_PREFIX", "dev-")
    monkeypatch.setenv("PAYMENTS_STRIPE_API_KEY", "sk_test_secret_value")
    s = Settings()
    assert s.sqs.endpoint_url == "http://127.0.0.1:9999"
    assert s.retry.backoff_base_seconds == 0.25
    assert s.rate_limit_per_minute == 0
    assert s.queue_prefix == "dev-"
    assert s.stripe.api_key is not None and s.stripe.api_key.get_secret_value() == "sk_test_secret_value"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PAYMENTS_SELLER_COUNTRY=DE\n")
    assert Settings().seller.country == "DE"


def test_bad_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_HTTP_PORT", "eighty")
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_secrets_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_STRIPE_API_KEY", "sk_test_do_not_print")
    monkeypatch.setenv("PAYMENTS_JWT_SECRET", "jwt-do-not-print")
    monkeypatch.setenv("PAYMENTS_DATABASE_URL", "postgresql://app:hunter2@db.example:5432/payments")
    # Issue 14 item 9: every URL's userinfo, Redis's and the merchant webhook's included.
    monkeypatch.setenv("PAYMENTS_REDIS_URL", "redis://:redis-do-not-print@127.0.0.1:1/0")
    monkeypatch.setenv("PAYMENTS_MERCHANT_WEBHOOK_URL", "https://hookuser:hook-do-not-print@merchant.example/hook")
    from config.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["config", "--json"])
        plain = CliRunner().invoke(cli, ["config"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    for output in (result.output, plain.output):
        assert "do_not_print" not in output and "do-not-print" not in output and "hunter2" not in output
    data = json.loads(result.output)
    assert data["stripe"]["api_key"] == "**********"
    assert data["database"]["url"] == "postgresql://app:***@db.example:5432/payments"
    assert data["endpoints"]["stripe_api_key"] == "**********"
    assert data["redis"]["url"] == "redis://:***@127.0.0.1:1/0"
    assert data["merchant"]["webhook_url"] == "https://hookuser:***@merchant.example/hook"
    assert data["endpoints"]["redis_url"] == "redis://:***@127.0.0.1:1/0"
    assert data["endpoints"]["database_url"] == "postgresql://app:***@db.example:5432/payments"


def test_url_settings_that_may_hold_credentials_are_secret() -> None:
    from pydantic import SecretStr

    s = Settings(redis={"url": "redis://:pw@h/0"}, merchant={"webhook_url": "https://u:pw@m.example/h"})
    assert isinstance(s.redis.url, SecretStr) and isinstance(s.merchant.webhook_url, SecretStr)
    assert "pw" not in repr(s) and "pw" not in str(s.model_dump())


def test_mask_url_password_masks_every_userinfo() -> None:
    assert mask_url_password("postgresql://postgres:pw@127.0.0.1/test") == "postgresql://postgres:***@127.0.0.1/test"
    assert mask_url_password("postgresql://127.0.0.1/test") == "postgresql://127.0.0.1/test"
    assert mask_url_password("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    # A lone userinfo is usually a token by itself.
    assert mask_url_password("https://tok_abc@hooks.example/x") == "https://***@hooks.example/x"
    # An "@" after the authority (a path or query) is not userinfo.
    assert mask_url_password("https://h.example/a@b?c=d@e") == "https://h.example/a@b?c=d@e"


def test_readme_configuration_table_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "README's configuration table is stale: run `python -m config.docs`"
