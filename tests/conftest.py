"""Test-wide configuration.  Service fixtures live in :mod:`tests.fixtures.services`."""

pytest_plugins = ["tests.fixtures.services"]
