"""Build the boto3 SQS client from resolved endpoints (one place, so the CLI, worker and bench agree)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from engine.runtime.endpoints import Endpoints

#: The embedded endpoint accepts any credentials; these keep boto3 from searching for real ones.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def make_sqs_client(endpoints: Endpoints, *, max_pool_connections: int = 32) -> Any:
    """A boto3 SQS client for ``endpoints``: the endpoint URL when one is set, else real AWS in the region.

    Dummy credentials are used for the embedded endpoint; real AWS uses the default credential chain.

    Raises:
        engine.runtime.endpoints.NothingRunningError: no SQS endpoint is running and none is configured.
    """
    endpoints.require("sqs")
    return make_client(
        "sqs",
        endpoint_url=endpoints.sqs_endpoint_url,
        region=endpoints.aws_region,
        local=endpoints.embedded_aws,
        max_pool_connections=max_pool_connections,
    )


def make_client(
    service: str,
    *,
    endpoint_url: str | None,
    region: str,
    local: bool = False,
    max_pool_connections: int = 32,
) -> Any:
    """A boto3 client; ``local=True`` adds dummy credentials.  Thread-safe to share across threads."""
    # Worker threads, the receiver, heartbeat and delete flusher share one client: size the pool for them.
    config = Config(
        max_pool_connections=max_pool_connections,
        retries={"mode": "standard", "max_attempts": 3},
    )
    kwargs: dict[str, Any] = {"region_name": region, "config": config}
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if local:
        kwargs.update(LOCAL_CREDENTIALS)
    # boto3-stubs types client() per literal service name; this factory takes any service.
    factory: Any = boto3.client
    return factory(service, **kwargs)
