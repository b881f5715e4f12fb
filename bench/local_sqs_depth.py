"""SendMessage and ReceiveMessage+DeleteMessageBatch rates of the local SQS endpoint, empty and with a backlog,
with and without the moto fast path (sandbox/embedded/moto_fastpath.py).

    .venv/bin/python bench/local_sqs_depth.py [--depth 10000] [--ops 300] [--seconds 15]

Each mode runs in its own process (the patch is process-wide).  The queue is FIFO with a FIFO DLQ (RedrivePolicy
maxReceiveCount 3, VisibilityTimeout 300), as the catalogue's work queues (docs/design.md); messages spread over 100
message groups.  Calls go over HTTP with boto3, one at a time.  The backlog is filled in-process (the unpatched moto
would need many minutes to take 10,000 sends over HTTP); its messages are built as moto's SendMessage builds them.  Each
measurement stops after --ops operations or --seconds seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GROUPS = 100
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def _fill(queue_name: str, depth: int, patched: bool) -> float:
    from moto.sqs.models import Message, sqs_backends

    backend = sqs_backends[ACCOUNT][REGION]
    started = time.perf_counter()
    if patched:
        for i in range(depth):
            backend.send_message(queue_name, f"backlog-{i}", group_id=f"g{i % GROUPS}", deduplication_id=f"b{i}")
    else:
        queue = backend.get_queue(queue_name)
        for i in range(depth):
            msg = Message(str(uuid.uuid4()), f"backlog-{i}")
            msg.group_id = f"g{i % GROUPS}"
            msg.deduplication_id = f"b{i}"
            msg.sequence_number = f"{i:020d}"
            msg.mark_sent()
            queue._messages.append(msg)
    return time.perf_counter() - started


def _measure(sqs: Any, url: str, tag: str, ops: int, seconds: float) -> dict[str, float]:
    started = time.perf_counter()
    sends = 0
    while sends < ops and time.perf_counter() - started < seconds:
        sqs.send_message(
            QueueUrl=url,
            MessageBody=f"{tag}-{sends}",
            MessageGroupId=f"g{sends % GROUPS}",
            MessageDeduplicationId=f"{tag}-{sends}",
        )
        sends += 1
    send_rate = sends / (time.perf_counter() - started)
    started = time.perf_counter()
    received = calls = 0
    while received < ops and time.perf_counter() - started < seconds:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        calls += 1
        if not msgs:
            break
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
        )
        calls += 1
        received += len(msgs)
    elapsed = time.perf_counter() - started
    return {"sends_per_s": send_rate, "received_per_s": received / elapsed, "calls_per_s": calls / elapsed}


def child(mode: str, depth: int, ops: int, seconds: float) -> dict[str, Any]:
    import boto3

    from sandbox.embedded.local_aws import LocalAwsServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = LocalAwsServer(port=0, fastpath=(mode == "patched"))
    endpoint = server.start()
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    out: dict[str, Any] = {"mode": mode}
    for label, backlog in (("depth 0", 0), (f"depth {depth:,}", depth)):
        name = f"bench{backlog}"
        dlq = sqs.create_queue(QueueName=f"{name}-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=f"{name}.fifo",
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": "300",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3}),
            },
        )["QueueUrl"]
        fill = _fill(f"{name}.fifo", backlog, mode == "patched")
        result = _measure(sqs, url, name, ops, seconds)
        result["fill_s"] = fill
        out[label] = result
    server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=300, help="sends, then received messages, per measurement")
    parser.add_argument("--seconds", type=float, default=15.0, help="time cap per measurement")
    parser.add_argument("--child", choices=["patched", "unpatched"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.depth, args.ops, args.seconds)))
        return
    import moto

    print(f"moto {moto.__version__}, FIFO queue, {GROUPS} groups, one call at a time over HTTP")
    print(f"{'mode':<10} {'backlog':<14} {'sends/s':>9} {'received msgs/s':>16} {'recv+delete calls/s':>20}")
    for mode in ("unpatched", "patched"):
        cmd = [sys.executable, __file__, "--child", mode, "--depth", str(args.depth), "--ops", str(args.ops)]
        cmd += ["--seconds", str(args.seconds)]
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        for label, r in data.items():
            if label == "mode":
                continue
            print(
                f"{mode:<10} {label:<14} {r['sends_per_s']:>9.1f} {r['received_per_s']:>16.1f} "
                f"{r['calls_per_s']:>20.1f}"
            )


if __name__ == "__main__":
    main()
