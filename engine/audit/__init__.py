"""The audit trail: hash-chained, append-only records of every operation that changes money or state.

``record.py`` (canonical JSON and the hash rule, pure), ``chain.py`` (appending in the caller's transaction),
``hooks.py`` (the one call each operation makes), ``ship.py`` (hourly JSON-lines objects to the Object-Lock
bucket), ``verify.py`` (recomputing the chain from the database and from S3), ``erase.py`` (GDPR erasure by
pseudonymisation).  docs/audit.md describes the whole.
"""
