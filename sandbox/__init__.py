"""The local stack, installed by the ``payments-engine[local]`` extra: the Stripe sandbox, embedded PostgreSQL,
Redis and SQS/S3, ``payments run``'s supervisor, ``payments demo``, and the process harness that ``payments run``,
the e2e tests and the bench share (:mod:`sandbox.process`).  The engine's core never imports it.

Importing this package needs no extra (:mod:`sandbox.extra` says whether the extra is installed); its modules
that run services do.
"""
