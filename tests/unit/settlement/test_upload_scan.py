"""The streaming card-number scan, the S3 stream writer (against a recording fake) and the header check."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.settlement.upload import BatchSink, InvalidBatch, PanDetected, PanScanner, S3StreamWriter

HEADER = b"terminal_id,transaction_id,timestamp,type,amount,currency,card_last4,auth_code,original_transaction_id\n"
ROW = b"T-1,TX1,2026-11-26T10:00:00+01:00,sale,1250,eur,4242,A1,\n"


def scan(data: bytes, size: int) -> bytes:
    scanner = PanScanner()
    passed = b"".join(scanner.feed(data[i : i + size]) for i in range(0, len(data), size))
    return passed + scanner.finish()


@pytest.mark.parametrize("size", [1, 5, 17, 4096])
@pytest.mark.parametrize(
    "pan", [b"4242424242424242", b"4242 4242 4242 4242", b"4000-0566-5566-5556", b"378282246310005"]
)
def test_a_card_number_is_found_whatever_the_chunking(size: int, pan: bytes) -> None:
    data = HEADER + ROW * 3 + b"T-1,TX9," + pan + b",sale,1,eur,4242,,\n" + ROW
    with pytest.raises(PanDetected) as caught:
        scan(data, size)
    assert caught.value.line == 5 and pan.decode() not in str(caught.value)


@pytest.mark.parametrize("size", [1, 13, 4096])
def test_clean_data_passes_through_unchanged(size: int) -> None:
    # Luhn-failing 16 digits, a 20-digit run, dates and amounts: none is a card number.
    data = HEADER + ROW + b"T-1,4242424242424241,2026-11-26T10:00:00Z,sale,12345678901234567890,eur,4242,,\n"
    assert scan(data, size) == data


def test_bytes_wait_for_the_end_of_their_line() -> None:
    scanner = PanScanner()
    assert scanner.feed(b"abc,4242 4242") == b""
    with pytest.raises(PanDetected):
        scanner.feed(b" 4242 4242\n")


def test_a_huge_line_without_newline_is_scanned_in_bounded_pieces() -> None:
    scanner = PanScanner()
    passed = scanner.feed(b"x," * 800_000)
    assert len(passed) > 0 and len(passed) + len(scanner.finish()) == 1_600_000


class FakeS3:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {"UploadId": "u1", "ETag": f"e{len(self.calls)}"}

        return call

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


def test_small_bodies_are_one_put_after_the_scan() -> None:
    s3 = FakeS3()
    sink = BatchSink(s3, "bucket", "k.csv", part_size=4096)
    sink.feed(HEADER[:10])
    sink.feed(HEADER[10:] + ROW)
    assert s3.calls == []  # nothing leaves before the whole body is scanned
    stored = sink.finish()
    assert s3.names() == ["put_object"] and s3.calls[0][1]["Body"] == HEADER + ROW
    assert stored.bytes == len(HEADER + ROW) and len(stored.sha256) == 64


def test_large_bodies_go_multipart_and_a_card_number_aborts() -> None:
    s3 = FakeS3()
    sink = BatchSink(s3, "bucket", "k.csv", part_size=128)
    sink.feed(HEADER + ROW * 10)
    assert s3.names()[:2] == ["create_multipart_upload", "upload_part"]
    sent = b"".join(kw["Body"] for name, kw in s3.calls if name == "upload_part")
    with pytest.raises(PanDetected):
        sink.feed(b"T-1,TX2,2026-11-26T10:00:00Z,sale,5,eur,4242,4111111111111111,\n")
    assert s3.names()[-1] == "abort_multipart_upload"
    assert b"4111" not in sent and all(b"4111" not in kw.get("Body", b"") for _, kw in s3.calls)


def test_multipart_completes_with_every_part_in_order() -> None:
    s3 = FakeS3()
    writer = S3StreamWriter(s3, "b", "k", "text/csv", part_size=10)
    writer.write(b"x" * 25)
    writer.close()
    parts = [kw for name, kw in s3.calls if name == "upload_part"]
    assert [p["PartNumber"] for p in parts] == [1, 2, 3] and [len(p["Body"]) for p in parts] == [10, 10, 5]
    done = s3.calls[-1]
    assert done[0] == "complete_multipart_upload"
    assert [p["PartNumber"] for p in done[1]["MultipartUpload"]["Parts"]] == [1, 2, 3]


@pytest.mark.parametrize("body", [b"", b"\n", b"amount,terminal\n1,2\n", b"x" * (70 * 1024)])
def test_not_a_batch(body: bytes) -> None:
    s3 = FakeS3()
    sink = BatchSink(s3, "bucket", "k.csv")
    with pytest.raises(InvalidBatch):
        sink.feed(body)
        sink.finish()
    assert "put_object" not in s3.names()
