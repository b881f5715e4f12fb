"""Writing one S3 object from a stream of bytes in constant memory (settlement batches, their reports, reports)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# S3's multipart minimum is 5 MiB (except the last part); 8 MiB parts keep the part count low.
PART_SIZE = 8 * 1024 * 1024


class S3StreamWriter:
    """Writes one S3 object from a stream of bytes in constant memory: PutObject when it fits one part, else a
    multipart upload of ``part_size`` parts.  :meth:`close` completes, :meth:`abort` leaves nothing behind.

    Raises whatever the S3 client raises (``botocore`` errors).
    """

    def __init__(self, s3: Any, bucket: str, key: str, content_type: str, part_size: int = PART_SIZE) -> None:
        self._s3, self.bucket, self.key, self._type, self._part_size = s3, bucket, key, content_type, part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.size = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= self._part_size:
            self._send_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]

    def _send_part(self, body: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self._type
            )["UploadId"]
        number = len(self._parts) + 1
        answer = self._s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def close(self) -> None:
        if self._upload_id is None:
            self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self._type)
        else:
            if self._buffer or not self._parts:
                self._send_part(bytes(self._buffer))
            self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer.clear()

    def abort(self) -> None:
        """Discard everything sent so far (best effort: a failure here is logged, never raised)."""
        self._buffer.clear()
        if self._upload_id is None:
            return
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        except Exception:
            log.exception("could not abort multipart upload of s3://%s/%s", self.bucket, self.key)
        self._upload_id = None
