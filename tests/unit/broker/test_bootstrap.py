from __future__ import annotations

from config.settings import Settings
from engine.broker.bootstrap import build_broker
from engine.broker.errors import DeadLetterRequested
from engine.errors import PoisonError
from engine.runtime.endpoints import Endpoints
from pipelines.registry import CATALOGUE


def test_build_broker_takes_prefix_timings_and_poison_errors_from_settings() -> None:
    settings = Settings(queue_prefix="dev-", retry={"backoff_base_seconds": 0.5}, sqs={"wait_time_seconds": 3})
    endpoints = Endpoints(
        database_url=None,
        sqs_endpoint_url="http://127.0.0.1:9",  # never contacted: building a broker makes no call
        s3_endpoint_url=None,
        redis_url=None,
        stripe_api_base=None,
        stripe_api_key=None,
        aws_region="eu-west-1",
        embedded_aws=True,
    )
    broker = build_broker(settings, endpoints, CATALOGUE)
    try:
        assert broker.prefix == "dev-"
        assert broker.config.backoff_base_seconds == 0.5 and broker.config.wait_time_seconds == 3
        assert set(broker.dead_letter_exceptions) == {DeadLetterRequested, PoisonError}
        assert broker.sqs.meta.endpoint_url == "http://127.0.0.1:9"
    finally:
        broker.close()
