"""Integration tests of the ledger against a real PostgreSQL."""
