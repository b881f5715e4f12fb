"""The local SQS/S3 endpoint (moto + sandbox.embedded.moto_fastpath) behaves as SQS does, over HTTP with boto3."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from sandbox.embedded import moto_fastpath

pytestmark = pytest.mark.integration

REGION = "eu-west-1"


@pytest.fixture
def sqs(local_aws_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=local_aws_url, region_name=REGION)


@pytest.fixture
def make_queue(sqs: Any, queue_prefix: str) -> Callable[..., str]:
    """Create a queue named with the test's prefix; FIFO names end in .fifo; ``dlq_url`` adds a RedrivePolicy."""

    def make(name: str, dlq_url: str | None = None, max_receives: int = 3, **attributes: str) -> str:
        attrs = {k: str(v) for k, v in attributes.items()}
        if name.endswith(".fifo"):
            attrs["FifoQueue"] = "true"
        if dlq_url:
            arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receives})
        url: str = sqs.create_queue(QueueName=queue_prefix + name, Attributes=attrs)["QueueUrl"]
        return url

    return make


def test_the_server_runs_patched(local_aws_url: str) -> None:
    assert moto_fastpath.is_applied()


def send_fifo(sqs: Any, url: str, body: str, group: str, dedup: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup or body
    )
    return result


def receive(sqs: Any, url: str, n: int = 10, **kw: Any) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=n, MessageSystemAttributeNames=["All"], **kw
    ).get("Messages", [])
    return msgs


def delete_all(sqs: Any, url: str, msgs: list[dict[str, Any]]) -> None:
    if msgs:
        resp = sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        )
        assert not resp.get("Failed")


def counts(sqs: Any, url: str) -> tuple[int, int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (
        int(a["ApproximateNumberOfMessages"]),
        int(a["ApproximateNumberOfMessagesNotVisible"]),
        int(a["ApproximateNumberOfMessagesDelayed"]),
    )


# -- FIFO -----------------------------------------------------------------------------------------------------
def test_fifo_keeps_order_within_each_group(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("order.fifo")
    for i in range(30):
        send_fifo(sqs, url, f"{'abc'[i % 3]}{i:02d}", group="abc"[i % 3])
    seen: dict[str, list[str]] = defaultdict(list)
    while True:
        msgs = receive(sqs, url, n=4)
        if not msgs:
            break
        for m in msgs:
            seen[m["Attributes"]["MessageGroupId"]].append(m["Body"])
        delete_all(sqs, url, msgs)
    for group, bodies in seen.items():
        assert bodies == sorted(bodies), group
        assert len(bodies) == 10
    assert counts(sqs, url) == (0, 0, 0)


def test_fifo_group_is_blocked_while_a_message_is_in_flight(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("block.fifo")
    for body, group in [("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B")]:
        send_fifo(sqs, url, body, group)
    [a1] = receive(sqs, url, n=1)
    assert a1["Body"] == "a1"
    [b1] = receive(sqs, url, n=1)
    assert b1["Body"] == "b1"
    assert receive(sqs, url) == []  # both groups have a message in flight
    assert counts(sqs, url) == (2, 2, 0)  # a2, b2 are visible (counted) yet not deliverable
    delete_all(sqs, url, [a1])
    assert [m["Body"] for m in receive(sqs, url)] == ["a2"]
    # Returning b1 (visibility 0) makes group B deliverable again, from b1.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=b1["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, url)
    assert [m["Body"] for m in again] == ["b1", "b2"]  # several of one group in one receive, in order
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_fifo_group_stays_blocked_while_any_message_of_a_batch_is_in_flight(
    sqs: Any, make_queue: Callable[..., str]
) -> None:
    url = make_queue("batchblock.fifo")
    for body in ("x1", "x2", "x3"):
        send_fifo(sqs, url, body, "X")
    x1, x2 = receive(sqs, url, n=2)
    # x1 goes back, x2 is still in flight: nothing of group X may be delivered, x1 included.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=x1["ReceiptHandle"], VisibilityTimeout=0)
    assert receive(sqs, url) == []
    delete_all(sqs, url, [x2])
    assert [m["Body"] for m in receive(sqs, url)] == ["x1", "x3"]


def test_fifo_sequence_numbers_increase(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("seq.fifo")
    numbers = [int(send_fifo(sqs, url, f"m{i}", "g")["SequenceNumber"]) for i in range(5)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5


def test_fifo_deduplicates_within_five_minutes_even_after_delete(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("dedup.fifo")
    first = send_fifo(sqs, url, "one", "g", dedup="key-1")
    dup = send_fifo(sqs, url, "one again", "g", dedup="key-1")
    assert dup["MessageId"] == first["MessageId"]
    assert dup["SequenceNumber"] == first["SequenceNumber"]
    msgs = receive(sqs, url)
    assert [m["Body"] for m in msgs] == ["one"]
    delete_all(sqs, url, msgs)
    # SQS remembers the id for the whole interval, whether or not the first message is still stored.
    send_fifo(sqs, url, "after delete", "g", dedup="key-1")
    assert receive(sqs, url) == []
    send_fifo(sqs, url, "other", "g", dedup="key-2")
    assert [m["Body"] for m in receive(sqs, url)] == ["other"]


def test_fifo_content_based_deduplication(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("cbd.fifo", ContentBasedDeduplication="true")
    a = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    b = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert a["MessageId"] == b["MessageId"]
    assert counts(sqs, url)[0] == 1


def test_receive_count_and_redrive_to_fifo_dlq_after_three_receives(sqs: Any, make_queue: Callable[..., str]) -> None:
    dlq = make_queue("work-dlq.fifo")
    url = make_queue("work.fifo", dlq_url=dlq, max_receives=3, VisibilityTimeout="300")
    # The DLQ already holds a message with the same dedup id: redrive must not be deduplicated away.
    send_fifo(sqs, dlq, "earlier", "g", dedup="job-1")
    sent = send_fifo(sqs, url, "job", "g", dedup="job-1")
    send_fifo(sqs, url, "next", "g", dedup="job-2")
    for attempt in (1, 2, 3):
        [m] = receive(sqs, url, n=1)
        assert m["Body"] == "job"
        assert m["Attributes"]["ApproximateReceiveCount"] == str(attempt)
        # Retry by visibility, as the engine's broker does; the group stays blocked meanwhile.
        assert receive(sqs, url) == []
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    # The fourth receive moves it to the DLQ and delivers the next message of the group.
    assert [m["Body"] for m in receive(sqs, url, n=1)] == ["next"]
    in_dlq = receive(sqs, dlq)
    assert [m["Body"] for m in in_dlq] == ["earlier", "job"]
    assert in_dlq[1]["MessageId"] == sent["MessageId"]
    assert in_dlq[1]["Attributes"]["MessageDeduplicationId"] == "job-1"


def test_visibility_timeout_expiry_redelivers(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("vis.fifo")
    send_fifo(sqs, url, "m", "g")
    [m] = receive(sqs, url, VisibilityTimeout=1)
    assert receive(sqs, url) == []
    time.sleep(1.2)
    [again] = receive(sqs, url)
    assert again["MessageId"] == m["MessageId"]
    assert again["ReceiptHandle"] != m["ReceiptHandle"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_extends_up_to_twelve_hours(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("hb")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    [m] = receive(sqs, url, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=30)
    time.sleep(1.2)
    assert receive(sqs, url) == []  # the heartbeat kept it invisible
    assert counts(sqs, url) == (0, 1, 0)
    # 12 hours in total since the receive, which was over a second ago.
    with pytest.raises(sqs.exceptions.ClientError, match="beyond the limit"):
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43199)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43000)


def test_long_poll_returns_when_a_message_arrives_and_blocks_no_one(
    sqs: Any, make_queue: Callable[..., str], local_aws_url: str
) -> None:
    url = make_queue("poll.fifo")
    other = boto3.client("sqs", endpoint_url=local_aws_url, region_name=REGION)
    got: list[list[dict[str, Any]]] = []
    poller = threading.Thread(target=lambda: got.append(receive(sqs, url, WaitTimeSeconds=10)))
    started = time.monotonic()
    poller.start()
    time.sleep(0.3)
    send_started = time.monotonic()
    send_fifo(other, url, "wake", "g")
    assert time.monotonic() - send_started < 2  # the pending long poll did not hold up another client
    poller.join(timeout=15)
    assert [m["Body"] for m in got[0]] == ["wake"]
    assert time.monotonic() - started < 5
    empty_started = time.monotonic()
    assert receive(sqs, url, WaitTimeSeconds=1) == []
    assert time.monotonic() - empty_started >= 0.9


# -- batches ----------------------------------------------------------------------------------------------------
def test_send_batch_reports_failed_entries(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("batch")
    resp = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok1", "MessageBody": "a"},
            {"Id": "bad", "MessageBody": "b", "DelaySeconds": 901},
            {"Id": "ok2", "MessageBody": "c"},
        ],
    )
    assert sorted(e["Id"] for e in resp["Successful"]) == ["ok1", "ok2"]
    assert [(f["Id"], f["SenderFault"]) for f in resp["Failed"]] == [("bad", True)]
    assert counts(sqs, url)[0] == 2


def test_delete_and_visibility_batches_report_failed_entries(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("partial.fifo")
    for i in range(3):
        send_fifo(sqs, url, f"m{i}", f"g{i}")
    msgs = receive(sqs, url)
    assert len(msgs) == 3
    vis = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "back", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "bogus", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 0},
        ],
    )
    assert [e["Id"] for e in vis["Successful"]] == ["back"]
    assert [(f["Id"], f["Code"]) for f in vis["Failed"]] == [("bogus", "ReceiptHandleIsInvalid")]
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "d1", "ReceiptHandle": msgs[1]["ReceiptHandle"]},
            {"Id": "d2", "ReceiptHandle": "also-bogus"},
            {"Id": "d3", "ReceiptHandle": msgs[2]["ReceiptHandle"]},
        ],
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["d1", "d3"]
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [("d2", "ReceiptHandleIsInvalid")]
    assert [m["Body"] for m in receive(sqs, url)] == ["m0"]
    assert counts(sqs, url) == (0, 1, 0)


# -- standard queues ---------------------------------------------------------------------------------------------
def test_standard_queue_basics(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("plain", VisibilityTimeout="60")
    for i in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    assert counts(sqs, url) == (5, 0, 1)
    first = receive(sqs, url, n=3)
    assert len(first) == 3
    assert counts(sqs, url) == (2, 3, 1)
    rest = receive(sqs, url)
    assert {m["Body"] for m in first + rest} == {f"m{i}" for i in range(5)}
    time.sleep(1.1)
    assert [m["Body"] for m in receive(sqs, url)] == ["later"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])  # deleting twice is fine
    assert counts(sqs, url) == (0, 5, 0)
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0)
    assert receive(sqs, url) == []


def test_standard_queue_redrive_and_message_attributes(sqs: Any, make_queue: Callable[..., str]) -> None:
    dlq = make_queue("n-dlq")
    url = make_queue("n", dlq_url=dlq, max_receives=1)
    sqs.send_message(
        QueueUrl=url,
        MessageBody="note",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "email"}},
    )
    [m] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    assert m["MessageAttributes"]["kind"]["StringValue"] == "email"
    assert receive(sqs, url) == []  # second receive: maxReceiveCount 1 reached, moved
    [d] = receive(sqs, dlq)
    assert d["Body"] == "note"


# -- a deep backlog ----------------------------------------------------------------------------------------------
def test_ten_thousand_message_backlog_keeps_order_and_counts(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue("deep.fifo", VisibilityTimeout="300")
    groups = 50
    depth = 10_000
    for start in range(0, depth, 10):
        resp = sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(j),
                    "MessageBody": f"{i:05d}",
                    "MessageGroupId": f"g{i % groups}",
                    "MessageDeduplicationId": f"d{i}",
                }
                for j, i in enumerate(range(start, start + 10))
            ],
        )
        assert len(resp["Successful"]) == 10
    assert counts(sqs, url) == (depth, 0, 0)
    # A message of group g0 stays in flight: everything behind it (200 messages) must be skipped.
    [held] = receive(sqs, url, n=1)
    assert held["Body"] == "00000"
    last: dict[str, int] = {}
    taken = 0
    while taken < 500:
        msgs = receive(sqs, url)
        assert msgs
        for m in msgs:
            group, n = m["Attributes"]["MessageGroupId"], int(m["Body"])
            assert group != "g0"
            assert n % groups == int(group[1:])
            assert n > last.get(group, -1)  # strict order within the group
            last[group] = n
        delete_all(sqs, url, msgs)
        taken += len(msgs)
    assert counts(sqs, url) == (depth - 1 - taken, 1, 0)
    # Duplicates are still recognised at depth, and the held group resumes in order once its head is deleted.
    send_fifo(sqs, url, "dup", "g0", dedup="d9999")
    delete_all(sqs, url, [held])
    resumed = [m for m in receive(sqs, url) if m["Attributes"]["MessageGroupId"] == "g0"]
    assert resumed and resumed[0]["Body"] == f"{groups:05d}"
    sqs.purge_queue(QueueUrl=url)
    assert counts(sqs, url) == (0, 0, 0)


def test_concurrent_consumers_get_each_message_once_in_group_order(
    sqs: Any, make_queue: Callable[..., str], local_aws_url: str
) -> None:
    url = make_queue("many.fifo", VisibilityTimeout="300")
    total, groups = 1_000, 20
    for start in range(0, total, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": str(i),
                    "MessageGroupId": f"g{i % groups}",
                    "MessageDeduplicationId": str(i),
                }
                for i in range(start, start + 10)
            ],
        )
    delivered: list[tuple[str, int]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def consume() -> None:
        client = boto3.client("sqs", endpoint_url=local_aws_url, region_name=REGION)
        try:
            idle = 0
            while idle < 3:
                msgs = receive(client, url)
                if not msgs:
                    idle += 1
                    continue
                idle = 0
                with lock:
                    delivered.extend((m["Attributes"]["MessageGroupId"], int(m["Body"])) for m in msgs)
                delete_all(client, url, msgs)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=consume) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors
    assert sorted(n for _, n in delivered) == list(range(total))  # each exactly once
    by_group: dict[str, list[int]] = defaultdict(list)
    for group, n in delivered:
        by_group[group].append(n)
    # A group is never handed to two consumers at once, so deliveries per group are in send order.
    assert all(ns == sorted(ns) for ns in by_group.values())
    assert counts(sqs, url) == (0, 0, 0)


# -- S3 ---------------------------------------------------------------------------------------------------------
def test_s3_put_and_get_on_the_same_endpoint(local_aws_url: str, queue_prefix: str) -> None:
    s3: Any = boto3.client("s3", endpoint_url=local_aws_url, region_name=REGION)
    bucket = f"{queue_prefix}invoices"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=bucket, Key="2026/000001.json", Body=b'{"total": 1230}')
    assert s3.get_object(Bucket=bucket, Key="2026/000001.json")["Body"].read() == b'{"total": 1230}'
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["2026/000001.json"]
