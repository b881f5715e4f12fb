"""The one place that builds the object graph: settings → endpoints → adapters (database, SQS, S3, Redis, broker).

Everything is created lazily, on first use, so a command that only needs SQS never connects to PostgreSQL.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from config.settings import Settings, get_settings
from engine.runtime.endpoints import Endpoints, resolve_endpoints

if TYPE_CHECKING:
    import redis
    import sqlalchemy as sa

    from engine.broker.broker import SQSBroker


@dataclass
class Container:
    """Adapters for one process.  Attributes raise :class:`engine.runtime.endpoints.NothingRunningError` when the part
    they need is neither configured nor running."""

    settings: Settings
    endpoints: Endpoints
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def db(self) -> sa.Engine:
        from engine.db.engine import get_engine

        url = self.endpoints.require("database").database_url
        assert url is not None
        return get_engine(url, self.settings.database.pool_size)

    @functools.cached_property
    def sqs(self) -> Any:
        from engine.broker.client import make_sqs_client

        return make_sqs_client(self.endpoints.require("sqs"))

    @functools.cached_property
    def s3(self) -> Any:
        from engine.adapters.s3 import make_s3_client

        return make_s3_client(self.endpoints.require("s3"))

    @functools.cached_property
    def redis(self) -> redis.Redis:
        from engine.adapters.redis_client import make_redis

        url = self.endpoints.require("redis").redis_url
        assert url is not None
        return make_redis(url)

    @property
    def redis_prefix(self) -> str:
        from engine.adapters.redis_client import redis_prefix

        return redis_prefix(self.settings)

    @functools.cached_property
    def broker(self) -> SQSBroker:
        from engine.broker.bootstrap import build_broker
        from engine.broker.queues import CATALOGUE
        from engine.db.dead_letters import SqlDeadLetterSink

        broker = build_broker(self.settings, self.endpoints, SqlDeadLetterSink(self.db))
        # Producers (the ingest, the scheduler) send to every catalogue queue; declaring costs no SQS call.
        for spec in CATALOGUE:
            broker.declare_queue(spec.base)
        return broker


def bootstrap(settings: Settings | None = None) -> Container:
    """Build the container for this process from the settings and the running stack's runtime file."""
    s = settings or get_settings()
    return Container(settings=s, endpoints=resolve_endpoints(s))
