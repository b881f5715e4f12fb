"""Unit tests of the ledger domain (pure, no database)."""
