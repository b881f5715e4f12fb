"""Embedded services for `payments run` and tests: PostgreSQL, Redis and a local SQS/S3 endpoint."""
