"""Running one reconciliation from the CLI: build the container, compute the report, print it, exit 0 or 1.

Shared by ``payments reconcile stripe`` and ``payments reconcile payouts``; a report has ``ok``, ``findings``
(each with ``to_dict()``), ``line()`` and ``to_dict()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from cli.output import EXIT_CHECK_FAILED, fail, print_json, print_table


def run_reconciliation(compute: Callable[[Any], Any], columns: Sequence[str], as_json: bool) -> None:
    """Print ``compute(container)``'s report (JSON, or its summary line and a table of findings) and exit 1 when
    it found anything.  Exits 1 with a message when nothing is running, Stripe or the database cannot be read."""
    import sqlalchemy as sa
    import stripe

    from engine.runtime.container import bootstrap
    from engine.runtime.endpoints import NothingRunningError

    try:
        report = compute(bootstrap())
    except NothingRunningError as exc:
        fail(str(exc))
    except stripe.StripeError as exc:
        fail(f"cannot read Stripe: {type(exc).__name__}: {exc.user_message or exc}")
    except sa.exc.SQLAlchemyError as exc:
        fail(f"cannot read the ledger: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    if as_json:
        print_json(report.to_dict())
    else:
        click.echo(report.line())
        if report.findings:
            print_table([f.to_dict() for f in report.findings], list(columns))
    if not report.ok:
        raise SystemExit(EXIT_CHECK_FAILED)
