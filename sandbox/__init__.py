"""The local stack, installed by the ``payments-engine[local]`` extra: the Stripe sandbox, embedded PostgreSQL,
Redis and SQS/S3, ``payments run``'s supervisor and ``payments demo``.  The engine's core never imports it."""
