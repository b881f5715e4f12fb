"""POS batch settlement: a CSV batch in S3 → settled rows, ledger postings per terminal and currency, a report.

Stages (``pipelines/settlement/stages.py``): ``ingest`` (streamed, chunked, checkpointed) → ``post`` (ledger) →
``report`` (S3).  ``kind.py`` declares the job kind; ``docs/settlement.md`` describes the flow, the reasons a row
is rejected and the figures.
"""
