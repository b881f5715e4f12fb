"""A starting process records its effective settings, secrets masked, only when they changed since that role's
last start."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from engine.audit.hooks import process_started
from engine.runtime.container import Container

pytestmark = pytest.mark.integration


def _config_records(c: Container) -> list[dict[str, object]]:
    with c.db.connect() as conn:
        bodies = conn.execute(
            sa.text("SELECT body FROM audit_records WHERE action = 'config.start' ORDER BY seq")
        ).scalars()
        return [json.loads(b) for b in bodies]


def test_a_start_is_recorded_when_the_settings_changed(audit_container: Container) -> None:
    c = audit_container
    assert process_started(c, "worker") == 1
    assert process_started(c, "worker") is None  # same settings: nothing new
    assert process_started(c, "scheduler") == 2  # another role has its own last record
    changed = c.settings.model_copy(update={"redis": c.settings.redis.model_copy(update={"prefix": "other:"})})
    assert process_started(Container(settings=changed, endpoints=c.endpoints), "worker") == 3
    records = _config_records(c)
    assert [r["actor"] for r in records] == ["process:worker", "process:scheduler", "process:worker"]


def test_the_record_holds_no_secret(audit_container: Container) -> None:
    c = audit_container
    secret = "whsec_do_not_record_me"
    settings = c.settings.model_copy(
        update={"stripe": c.settings.stripe.model_copy(update={"webhook_secrets": SecretStr(secret)})}
    )
    process_started(Container(settings=settings, endpoints=c.endpoints), "ingest")
    [record] = _config_records(c)
    text = json.dumps(record)
    assert secret not in text and "sk_test_payments_tests" not in text
    assert record["actor"] == "process:ingest" and record["detail"]["settings"]  # type: ignore[index]
