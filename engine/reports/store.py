"""Report files in the reports bucket (``payments-reports``): one S3 object per file, streamed part by part.

Keys are ``reports/{type}/{period}/{name}/{file}``: the caller's ``name`` (a job id) keeps two runs apart, and the
same name rewrites the same objects (an idempotent retry).
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings
from engine.adapters.s3_stream import S3StreamWriter
from engine.reports.generate import OpenSink, ReportSpec


def reports_bucket(settings: Settings) -> str:
    """The reports bucket with ``PAYMENTS_QUEUE_PREFIX`` in front (as :func:`engine.adapters.s3.bucket_names`)."""
    return settings.queue_prefix + settings.s3.bucket_reports


def key_prefix(spec: ReportSpec, name: str) -> str:
    """``reports/{type}/{period}/{name}/``."""
    return f"reports/{spec.type}/{spec.period.label}/{name}/"


def s3_sinks(s3: Any, bucket: str, prefix: str) -> OpenSink:
    """Sinks writing each file to ``s3://{bucket}/{prefix}{file}`` (nothing is visible before ``close``)."""

    def open_sink(file: str, content_type: str) -> S3StreamWriter:
        return S3StreamWriter(s3, bucket, prefix + file, content_type)

    return open_sink
