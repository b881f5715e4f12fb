"""The SQS fast path: same observable behaviour as moto where moto follows SQS, and the corrections it makes.

These run moto's backend in-process (no network).  The patch is process-wide and idempotent, as in the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from sandbox.embedded import moto_fastpath
from tests.unit.sandbox.embedded.sqs_scenario import per_group

ROOT = Path(__file__).resolve().parents[4]
ACCOUNT, REGION = "123456789012", "eu-west-1"


@pytest.fixture
def backend() -> Any:
    from moto.sqs.models import sqs_backends

    assert moto_fastpath.apply()
    return sqs_backends[ACCOUNT][REGION]


@pytest.fixture
def name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Shift the fast path's clock: append seconds to ``clock`` to move time forward."""
    offset: list[float] = [0.0]
    monkeypatch.setattr(moto_fastpath, "_now_ms", lambda: (time.time() + sum(offset)) * 1000.0)
    return offset


def _trace(mode: str) -> list[Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.unit.sandbox.embedded.sqs_scenario", mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: list[Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_patched_backend_behaves_as_moto_on_a_mixed_scenario() -> None:
    patched, unpatched = _trace("patched"), _trace("unpatched")
    assert per_group(patched) == per_group(unpatched)
    # The scenario does exercise redrive, group blocking and batches (a trace of empties would prove nothing).
    events, groups = per_group(patched)
    assert ["count", "s-dlq.fifo", 7, 0, 0] in events
    assert groups["s.fifo/g2"][:4] == [["m2", 1], ["m2", 2], ["m2", 3], ["m5", 1]]


LATE_APPLY = """
import json
from moto.sqs.models import sqs_backends
from sandbox.embedded import moto_fastpath
b = sqs_backends["123456789012"]["eu-west-1"]
b.create_queue("late.fifo", FifoQueue="true")
for i in range(4):
    b.send_message("late.fifo", f"m{i}", group_id=f"g{i % 2}", deduplication_id=str(i))
[held] = b.receive_message("late.fifo", 1, 0, 300)
moto_fastpath.apply()
q = b.get_queue("late.fifo")
out = [q.approximate_number_of_messages, q.approximate_number_of_messages_not_visible]
out.append([m.body for m in b.receive_message("late.fifo", 10, 0, 300)])
b.delete_message("late.fifo", held.receipt_handle)
out.append([m.body for m in b.receive_message("late.fifo", 10, 0, 300)])
print(json.dumps(out))
"""


def test_queues_created_before_apply_are_taken_over() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", LATE_APPLY], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [3, 1, ["m1", "m3"], ["m2"]]


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("5.0.20", True),
        ("5.1.0", True),
        ("5.2.5", True),
        ("5.2.99", True),
        ("5.0.19", False),
        ("5.3.0", False),
        ("6.0.0", False),
        ("4.2.14", False),
        ("5.3.0rc1", False),
        ("5.2.0.dev3", True),
    ],
)
def test_version_range(version: str, ok: bool) -> None:
    assert moto_fastpath.version_supported(version) is ok


def test_apply_refuses_an_unsupported_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto
    from moto.sqs.models import SQSBackend

    before = SQSBackend.__dict__["receive_message"]
    monkeypatch.setattr(moto_fastpath, "_originals", {})  # pretend nothing is applied yet in this process
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(moto_fastpath.UnsupportedMotoVersion, match=r"moto 5\.3\.0"):
        moto_fastpath.apply()
    with pytest.warns(RuntimeWarning, match="UNPATCHED"):
        assert moto_fastpath.apply(strict=False) is False
    assert SQSBackend.__dict__["receive_message"] is before  # nothing was touched


def test_dedup_window_is_five_minutes(backend: Any, name: str, clock: list[float]) -> None:
    backend.create_queue(f"{name}.fifo", FifoQueue="true")
    first = backend.send_message(f"{name}.fifo", "a", group_id="g", deduplication_id="k")
    dup = backend.send_message(f"{name}.fifo", "b", group_id="g", deduplication_id="k")
    assert dup.id == first.id
    clock.append(301)
    fresh = backend.send_message(f"{name}.fifo", "c", group_id="g", deduplication_id="k")
    assert fresh.id != first.id
    assert [m.body for m in backend.receive_message(f"{name}.fifo", 10, 0, 30)] == ["a", "c"]


def test_dedup_scope_message_group(backend: Any, name: str) -> None:
    backend.create_queue(f"{name}.fifo", FifoQueue="true", DeduplicationScope="messageGroup")
    backend.send_message(f"{name}.fifo", "a", group_id="g1", deduplication_id="k")
    backend.send_message(f"{name}.fifo", "b", group_id="g2", deduplication_id="k")
    backend.send_message(f"{name}.fifo", "c", group_id="g1", deduplication_id="k")
    assert backend.get_queue(f"{name}.fifo").approximate_number_of_messages == 2


def test_visibility_limit_counts_from_the_latest_receive(backend: Any, name: str, clock: list[float]) -> None:
    backend.create_queue(name)
    backend.send_message(name, "old")
    clock.append(10 * 3600)  # the message waited ten hours before anyone received it
    [msg] = backend.receive_message(name, 1, 0, 30)
    backend.change_message_visibility(name, msg.receipt_handle, 6 * 3600)  # moto alone refuses this
    from moto.sqs.exceptions import InvalidParameterValue

    clock.append(60)
    with pytest.raises(InvalidParameterValue):
        backend.change_message_visibility(name, msg.receipt_handle, 12 * 3600)


def test_messages_past_retention_are_dropped_not_delivered(backend: Any, name: str, clock: list[float]) -> None:
    backend.create_queue(name, MessageRetentionPeriod="60")
    backend.send_message(name, "stale")
    queue = backend.get_queue(name)
    assert queue.approximate_number_of_messages == 1
    clock.append(61)
    assert backend.receive_message(name, 10, 0, 30) == []
    assert queue.approximate_number_of_messages == 0


def test_visibility_expiry_is_applied_lazily_and_counted(backend: Any, name: str, clock: list[float]) -> None:
    backend.create_queue(f"{name}.fifo", FifoQueue="true")
    for i in range(3):
        backend.send_message(f"{name}.fifo", f"m{i}", group_id="g", deduplication_id=str(i))
    queue = backend.get_queue(f"{name}.fifo")
    [m0, m1, _m2] = backend.receive_message(f"{name}.fifo", 10, 0, 30)
    assert (queue.approximate_number_of_messages, queue.approximate_number_of_messages_not_visible) == (0, 3)
    assert queue.pending_message_groups == {"g"}
    backend.delete_message(f"{name}.fifo", m0.receipt_handle)
    clock.append(31)
    assert (queue.approximate_number_of_messages, queue.approximate_number_of_messages_not_visible) == (2, 0)
    # (moto stamps visible_at from the real clock: a timeout longer than the shift keeps the test coherent)
    again = backend.receive_message(f"{name}.fifo", 10, 0, 120)
    assert [(m.body, m.approximate_receive_count) for m in again] == [("m1", 2), ("m2", 2)]
    # The old receipt handle of m1 still deletes it (moto's and SQS's leniency), the unknown one does not.
    backend.delete_message(f"{name}.fifo", m1.receipt_handle)
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    with pytest.raises(ReceiptHandleIsInvalid):
        backend.delete_message(f"{name}.fifo", "unknown")
    assert [m.body for m in queue.messages] == []
    assert {m.body for m in queue.pending_messages} == {"m2"}


def test_received_snapshots_are_not_retained_by_moto(backend: Any, name: str) -> None:
    from moto.sqs import models

    tracked: list[Any] = models.Message.instances_tracked  # type: ignore[attr-defined]
    backend.create_queue(name)
    backend.send_message(name, "x")
    before = len(tracked)
    for _ in range(5):
        [m] = backend.receive_message(name, 1, 0, 0)
        assert m.body == "x"
    assert len(models.Message.instances_tracked) == before == 0  # type: ignore[attr-defined]


def test_purge_keeps_dedup_history_and_empties_indexes(backend: Any, name: str) -> None:
    backend.create_queue(f"{name}.fifo", FifoQueue="true")
    for i in range(5):
        backend.send_message(f"{name}.fifo", f"m{i}", group_id=f"g{i}", deduplication_id=str(i))
    [m] = backend.receive_message(f"{name}.fifo", 1, 0, 30)
    backend.purge_queue(f"{name}.fifo")
    st = moto_fastpath.state(backend.get_queue(f"{name}.fifo"))
    assert (st.msgs, st.groups, st.by_receipt, st.counts[:3]) == ({}, {}, {}, [0, 0, 0])
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    with pytest.raises(ReceiptHandleIsInvalid):
        backend.delete_message(f"{name}.fifo", m.receipt_handle)
    backend.send_message(f"{name}.fifo", "again", group_id="g0", deduplication_id="0")
    backend.send_message(f"{name}.fifo", "new", group_id="g0", deduplication_id="new")
    assert [x.body for x in backend.receive_message(f"{name}.fifo", 10, 0, 30)] == ["new"]
