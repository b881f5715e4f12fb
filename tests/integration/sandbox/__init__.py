"""Tests of the local stack (`sandbox/`) over real HTTP, PostgreSQL and Redis."""
