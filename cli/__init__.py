"""The ``payments`` command line: one module per command group, loaded lazily by :mod:`cli.main`."""
