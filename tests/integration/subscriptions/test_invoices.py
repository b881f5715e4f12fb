"""Gap-free invoice numbering against the real database: rollbacks give numbers back, concurrent issuers never
collide or skip, one invoice per job."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from engine.db.tables_subscriptions import invoices
from engine.invoices import numbering


def _issue(conn: sa.Connection, seller: str, job_id: str, year: int = 2027) -> Any:
    return numbering.issue(
        conn,
        seller=seller,
        issued_at=datetime(year, 3, 1, tzinfo=UTC),
        job_id=job_id,
        subscription_id=None,
        customer_id="cus_1",
        currency="eur",
        net=900,
        vat=207,
        vat_country="IE",
        vat_rate="23",
        vat_scheme="domestic",
        document={"lines": []},
    )


def test_a_rolled_back_invoice_gives_its_number_back(container) -> None:  # type: ignore[no-untyped-def]
    seller = f"S{uuid.uuid4().hex[:8]}"
    with container.db.begin() as conn:
        assert _issue(conn, seller, f"job_{uuid.uuid4().hex}")["number"] == "2027-000001"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), container.db.begin() as conn:
        assert _issue(conn, seller, f"job_{uuid.uuid4().hex}")["number"] == "2027-000002"
        raise Boom
    job = f"job_{uuid.uuid4().hex}"
    with container.db.begin() as conn:
        row = _issue(conn, seller, job)
        assert row["number"] == "2027-000002"
        assert row["s3_key"] == f"invoices/{seller}/2027/2027-000002.pdf"
        assert row["document"]["number"] == "2027-000002"
        # One invoice per job: issuing again returns it without taking a number.
        assert _issue(conn, seller, job)["number"] == "2027-000002"
    with container.db.begin() as conn:
        assert _issue(conn, seller, f"job_{uuid.uuid4().hex}", year=2028)["number"] == "2028-000001"
        assert _issue(conn, seller, f"job_{uuid.uuid4().hex}")["number"] == "2027-000003"


def test_concurrent_issuers_number_without_gaps(container) -> None:  # type: ignore[no-untyped-def]
    seller = f"S{uuid.uuid4().hex[:8]}"
    errors: list[BaseException] = []

    def issuer() -> None:
        try:
            for _ in range(8):
                with container.db.begin() as conn:
                    _issue(conn, seller, f"job_{uuid.uuid4().hex}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=issuer) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with container.db.connect() as conn:
        numbers = conn.execute(
            sa.select(invoices.c.sequence).where(invoices.c.seller == seller).order_by(invoices.c.sequence)
        ).scalars()
        assert list(numbers) == list(range(1, 33))
