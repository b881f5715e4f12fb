"""The ``report`` job kind: a report computed from the ledger on the read replica (or the primary), its files
written to the reports bucket under the run's own key prefix, and linked from the job (docs/reports.md)."""
