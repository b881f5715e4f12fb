from __future__ import annotations

import pytest

from pipelines.registry import CATALOGUE

resolve_queue_name = CATALOGUE.resolve
spec_for_kind = CATALOGUE.for_kind


def test_catalogue_names_are_the_documented_ones() -> None:
    assert [s.name() for s in CATALOGUE] == [
        "payments.fifo",
        "refunds.fifo",
        "subscriptions.fifo",
        "settlements.fifo",
        "webhooks.fifo",
        "reports.fifo",
        "notifications",
    ]
    assert CATALOGUE[0].dlq_name("p-") == "p-payments-dlq.fifo"
    assert CATALOGUE[-1].dlq_name() == "notifications-dlq"
    assert all(s.max_receive_count == 20 for s in CATALOGUE)  # the safety net above the engine's 3 attempts


@pytest.mark.parametrize(
    ("name", "base", "dlq"),
    [
        ("payments", "payments", False),
        ("payments.fifo", "payments", False),
        ("payments-dlq.fifo", "payments", True),
        ("notifications", "notifications", False),
        ("notifications-dlq", "notifications", True),
        ("pre-refunds.fifo", "refunds", False),
    ],
)
def test_resolve_queue_name(name: str, base: str, dlq: bool) -> None:
    ref = resolve_queue_name(name, prefix="pre-")
    assert (ref.spec.base, ref.dlq) == (base, dlq)


@pytest.mark.parametrize("name", ["paymentz", "notifications.fifo", ""])
def test_resolve_refuses_unknown_names(name: str) -> None:
    with pytest.raises(KeyError):
        resolve_queue_name(name)


def test_kind_maps_to_its_queue() -> None:
    assert spec_for_kind("refund") is CATALOGUE[1]
    assert spec_for_kind("nope") is None


@pytest.mark.parametrize(
    ("seconds", "work", "notifications"),
    [(None, 300, 60), (300, 300, 60), (120, 120, 60), (5, 5, 5)],
)
def test_configured_visibility_sets_work_queues_and_caps_notifications(
    seconds: int | None, work: int, notifications: int
) -> None:
    specs = {s.base: s.with_visibility(seconds) for s in CATALOGUE}
    assert all(specs[s.base].visibility_timeout == work for s in CATALOGUE if s.fifo)
    assert specs["notifications"].visibility_timeout == notifications
    assert specs["payments"].attributes()["VisibilityTimeout"] == str(work)
    # Nothing else of a spec moves with the setting.
    assert specs["payments"].retention == CATALOGUE[0].retention
