"""Invoice PDFs in the invoices bucket (``{prefix}payments-invoices``)."""

from __future__ import annotations

from typing import Any

from config.settings import Settings


def bucket(settings: Settings) -> str:
    """The invoices bucket, with ``PAYMENTS_QUEUE_PREFIX`` in front as every bucket name has."""
    return settings.queue_prefix + settings.s3.bucket_invoices


def put_pdf(s3: Any, settings: Settings, key: str, pdf: bytes, number: str) -> None:
    """Store ``pdf`` under ``key``.  Idempotent: the same invoice always renders the same bytes to the same key.

    Raises botocore's ``ClientError`` (e.g. ``NoSuchBucket``) and connection errors for the caller to classify.
    """
    s3.put_object(
        Bucket=bucket(settings),
        Key=key,
        Body=pdf,
        ContentType="application/pdf",
        Metadata={"invoice-number": number},
    )


def get_pdf(s3: Any, settings: Settings, key: str) -> bytes:
    """The stored PDF bytes.  Raises botocore's ``ClientError`` (``NoSuchKey``) when absent."""
    body: bytes = s3.get_object(Bucket=bucket(settings), Key=key)["Body"].read()
    return body
