"""Dead-letter operations: list, show, replay and purge what sits in the dead-letter queues.

One small module per purpose:

- :mod:`engine.ops.dlq.messages`: reading DLQ messages from SQS without taking them (peek, release, delete).
- :mod:`engine.ops.dlq.entries`: a DLQ message joined with its reason row and its job; filters.
- :mod:`engine.ops.dlq.plan`: what a replay would do for a job (charge, resume after the charge, only notify…).
- :mod:`engine.ops.dlq.replay`: moving messages back to their source queue, never losing one.
- :mod:`engine.ops.dlq.purge`: archiving every message and its reason in the database, then deleting it.
- :mod:`engine.ops.dlq.show`: everything about one message or job.

``payments dlq`` (``cli/dlq_cmd.py``) is a thin layer over these; see ``docs/operations.md`` for the runbook.
"""
