"""S3 buckets of the engine (invoices, settlements, audit, reports), created with the queues."""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from engine.runtime.endpoints import Endpoints

#: Default retention of the audit bucket's Object Lock (compliance mode), as deploy/aws/data-plane.yaml's default.
AUDIT_RETENTION_YEARS = 7


def bucket_names(settings: Settings) -> list[str]:
    """Every bucket name, with ``PAYMENTS_QUEUE_PREFIX`` put verbatim in front."""
    p = settings.queue_prefix
    s3 = settings.s3
    return [p + s3.bucket_invoices, p + s3.bucket_settlements, p + s3.bucket_audit, p + s3.bucket_reports]


def settlements_bucket(settings: Settings) -> str:
    """The bucket POS batches and settlement reports go to, with ``PAYMENTS_QUEUE_PREFIX`` in front."""
    return f"{settings.queue_prefix}{settings.s3.bucket_settlements}"


def ensure_buckets(s3: Any, settings: Settings) -> list[str]:
    """Create every bucket that does not exist yet; returns the names created.  Idempotent."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    audit = settings.queue_prefix + settings.s3.bucket_audit
    created = []
    for name in bucket_names(settings):
        if name in existing:
            continue
        kwargs: dict[str, Any] = {"Bucket": name}
        region = s3.meta.region_name
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if name == audit:
            # Object Lock can only be enabled at creation; every audit object is then kept, in compliance mode, for
            # the default retention (docs/audit.md).
            kwargs["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**kwargs)
        if name == audit:
            s3.put_object_lock_configuration(
                Bucket=name,
                ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": AUDIT_RETENTION_YEARS}},
                },
            )
        created.append(name)
    return created


def make_s3_client(endpoints: Endpoints) -> Any:
    """A boto3 S3 client for ``endpoints`` (path-style addressing, which local endpoints need).

    Raises:
        engine.runtime.endpoints.NothingRunningError: no S3 endpoint is running and none is configured.
    """
    from botocore.config import Config

    from engine.broker.client import LOCAL_CREDENTIALS

    endpoints.require("s3")
    import boto3

    kwargs: dict[str, Any] = {
        "region_name": endpoints.aws_region,
        "config": Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}),
    }
    if endpoints.s3_endpoint_url:
        kwargs["endpoint_url"] = endpoints.s3_endpoint_url
    if endpoints.embedded_aws:
        kwargs.update(LOCAL_CREDENTIALS)
    return boto3.client("s3", **kwargs)
