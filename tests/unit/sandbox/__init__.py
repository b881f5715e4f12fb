"""Tests of the local stack (`sandbox/`) that need no service."""
