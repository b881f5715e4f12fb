"""Dead-letter operations: list, show, replay and purge what sits in the dead-letter queues.

One small module per purpose:

- :mod:`engine.dlq.messages`: reading DLQ messages from SQS without taking them (peek, release, delete).
- :mod:`engine.dlq.entries`: a DLQ message joined with its reason row and its job; filters.
- :mod:`engine.dlq.plan`: what a replay would do for a job (charge, resume after the charge, only notify…).
- :mod:`engine.dlq.replay`: moving messages back to their source queue, never losing one.
- :mod:`engine.dlq.purge`: archiving every message and its reason in the database, then deleting it.
- :mod:`engine.dlq.show`: everything about one message or job.

``payments dlq`` (``cli/dlq_cmd.py``) is a thin layer over these; see ``docs/operations.md`` for the runbook.
"""
