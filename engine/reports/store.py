"""Report files in the reports bucket (``payments-reports``): one S3 object per file, streamed part by part.

Keys are ``reports/{type}/{period}/{name}/{file}``.  A report job names each run ``{job}/{run}``
(:func:`run_prefix`), so every run writes a set of its own: two copies of one job never mix their files, and the
job links exactly one complete set (``pipelines/report/generate.py``).  :func:`discard` removes what a run left.
"""

from __future__ import annotations

import logging
from typing import Any

from config.settings import Settings
from engine.adapters.s3_stream import S3StreamWriter
from engine.reports.generate import OpenSink, ReportSpec

log = logging.getLogger(__name__)


def reports_bucket(settings: Settings) -> str:
    """The reports bucket with ``PAYMENTS_QUEUE_PREFIX`` in front (as :func:`engine.adapters.s3.bucket_names`)."""
    return settings.queue_prefix + settings.s3.bucket_reports


def key_prefix(spec: ReportSpec, name: str) -> str:
    """``reports/{type}/{period}/{name}/``."""
    return f"reports/{spec.type}/{spec.period.label}/{name}/"


def job_prefix(spec: ReportSpec, job_id: str) -> str:
    """``reports/{type}/{period}/{job}/``: where every run of a report job writes."""
    return key_prefix(spec, job_id)


def run_prefix(spec: ReportSpec, job_id: str, run: str) -> str:
    """``reports/{type}/{period}/{job}/{run}/``: the files of one run of a report job."""
    return key_prefix(spec, f"{job_id}/{run}")


def s3_sinks(s3: Any, bucket: str, prefix: str) -> OpenSink:
    """Sinks writing each file to ``s3://{bucket}/{prefix}{file}`` (nothing is visible before ``close``)."""

    def open_sink(file: str, content_type: str) -> S3StreamWriter:
        return S3StreamWriter(s3, bucket, prefix + file, content_type)

    return open_sink


def discard(s3: Any, bucket: str, prefix: str, keep: str | None = None) -> int:
    """Delete every object under ``prefix`` except those under ``keep``, and abort the multipart uploads left
    unfinished there (a run that died mid-file); returns how many objects were deleted.

    Raises what the S3 client raises (``botocore`` errors).
    """
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [o["Key"] for o in page.get("Contents", []) if keep is None or not o["Key"].startswith(keep)]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
            deleted += len(keys)
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if keep is None or not upload["Key"].startswith(keep):
                s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return deleted


def discard_quietly(s3: Any, bucket: str, prefix: str, keep: str | None = None) -> None:
    """:func:`discard`, logging instead of raising: cleaning up must not hide the failure that called for it."""
    try:
        discard(s3, bucket, prefix, keep)
    except Exception:
        log.exception("could not discard report files under s3://%s/%s", bucket, prefix)
