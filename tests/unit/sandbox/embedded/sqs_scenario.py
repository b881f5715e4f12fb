"""A deterministic SQS scenario run against moto's backend in-process, patched or not.

``python -m tests.unit.sandbox.embedded.sqs_scenario patched|unpatched`` prints a JSON trace of everything a client
could observe (bodies, receive counts, queue counts, batch results, errors), minus ids and receipt handles.
The fast path must produce the same trace as moto itself wherever moto follows SQS; the behaviours the patch
deliberately corrects (dedup after delete, sequence numbers, redrive dedup, the 12-hour base) are left out.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ACCOUNT, REGION = "123456789012", "eu-west-1"


def run() -> list[Any]:
    from moto.sqs.exceptions import SQSException
    from moto.sqs.models import sqs_backends

    b = sqs_backends[ACCOUNT][REGION]
    trace: list[Any] = []

    def rec(queue: str, n: int = 10, vt: int = 30) -> list[dict[str, Any]]:
        msgs = b.receive_message(queue, n, 0, vt, ["All"])
        trace.append(["recv", queue, [[m.body, m.approximate_receive_count, m.group_id] for m in msgs]])
        return [{"body": m.body, "rh": m.receipt_handle} for m in msgs]

    def cnt(queue: str) -> None:
        a = b.get_queue_attributes(queue, ["All"])
        trace.append(
            [
                "count",
                queue,
                a["ApproximateNumberOfMessages"],
                a["ApproximateNumberOfMessagesNotVisible"],
                a["ApproximateNumberOfMessagesDelayed"],
            ]
        )

    dlq = b.create_queue("s-dlq.fifo", FifoQueue="true")
    redrive = json.dumps({"deadLetterTargetArn": dlq.queue_arn, "maxReceiveCount": 3})
    b.create_queue("s.fifo", FifoQueue="true", RedrivePolicy=redrive, VisibilityTimeout="300")
    for i in range(12):
        b.send_message("s.fifo", f"m{i}", group_id=f"g{i % 3}", deduplication_id=f"d{i}")
    b.send_message("s.fifo", "dup", group_id="g0", deduplication_id="d0")  # stored duplicate: dropped by both
    cnt("s.fifo")
    # FIFO receives take one message at a time (or from a single group): for several groups in one call, moto
    # walks arrival order while the fast path fills the batch from one group first, as SQS documents.
    first = rec("s.fifo", 1)
    rec("s.fifo", 1)
    second = rec("s.fifo", 1)
    rec("s.fifo", 1)
    cnt("s.fifo")
    ok, failed = b.delete_message_batch(
        "s.fifo", [{"Id": "a", "ReceiptHandle": first[0]["rh"]}, {"Id": "b", "ReceiptHandle": "nope"}]
    )
    trace.append(["delete_batch", ok, [f["Code"] for f in failed]])
    got = rec("s.fifo", 10)  # only group g0 is deliverable: all of it, in order
    b.change_message_visibility("s.fifo", second[0]["rh"], 0)
    for m in got:
        b.change_message_visibility("s.fifo", m["rh"], 0)
    cnt("s.fifo")
    # Keep returning every message until all are redriven (three receives, then the fourth moves it).
    for _ in range(100):
        got = rec("s.fifo", 1)
        if not got:
            break
        for m in got:
            b.change_message_visibility("s.fifo", m["rh"], 0)
    cnt("s.fifo")
    cnt("s-dlq.fifo")
    for _ in range(10):
        got = rec("s-dlq.fifo", 1, vt=0)
    try:
        b.change_message_visibility("s.fifo", "nope", 0)
    except SQSException as exc:
        trace.append(["error", exc.code])
    ok, errs = b.change_message_visibility_batch(
        "s.fifo",
        [{"Id": "x", "ReceiptHandle": "nope", "VisibilityTimeout": 0}, {"Id": "y", "VisibilityTimeout": "bad"}],
    )
    trace.append(["vis_batch", ok, [e["Code"] for e in errs]])

    b.create_queue("std", VisibilityTimeout="30")
    for i in range(6):
        b.send_message("std", f"s{i}")
    b.send_message("std", "delayed", delay_seconds=600)
    cnt("std")
    got = rec("std", 4)
    rec("std", 4, vt=0)
    cnt("std")
    b.delete_message("std", got[0]["rh"])
    b.delete_message("std", got[0]["rh"])
    cnt("std")
    b.purge_queue("std")
    cnt("std")
    rec("std")
    return trace


def per_group(trace: list[Any]) -> tuple[list[Any], dict[str, list[Any]]]:
    """Split a trace into its non-receive events (in order) and, per queue and group, what was delivered.

    Which group a receive serves first is not specified by SQS (and differs between moto and the fast path);
    what must agree is everything else and, per group, the sequence of deliveries with their receive counts.
    """
    events: list[Any] = []
    groups: dict[str, list[Any]] = {}
    for entry in trace:
        if entry[0] != "recv":
            events.append(entry)
            continue
        events.append(["recv", entry[1], len(entry[2])])
        for body, count, group in entry[2]:
            groups.setdefault(f"{entry[1]}/{group}", []).append([body, count])
    return events, groups


def main() -> None:
    mode = sys.argv[1]
    if mode == "patched":
        from sandbox.embedded import moto_fastpath

        moto_fastpath.apply()
    print(json.dumps(run()))


if __name__ == "__main__":
    main()
