"""The whole schema: every table module, gathered on one ``metadata``.

Import ``metadata`` from here where all tables must be known (Alembic's environment, the test that compares the
migrated schema with the table definitions); queries import the table they use from its own module.
"""

from __future__ import annotations

from engine.db import (
    tables,
    tables_audit,
    tables_credit_notes,
    tables_dlq,
    tables_rates,
    tables_refunds,
    tables_settlement,
    tables_subscriptions,
)
from engine.db.metadata import metadata

#: The modules whose tables make up the schema, in migration order.
TABLE_MODULES = (
    tables,
    tables_settlement,
    tables_refunds,
    tables_dlq,
    tables_subscriptions,
    tables_rates,
    tables_audit,
    tables_credit_notes,
)

__all__ = ["TABLE_MODULES", "metadata"]
