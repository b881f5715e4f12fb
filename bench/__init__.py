"""Benchmarks run by `make bench` (``python -m bench``).  One module per scenario; see :mod:`bench.__main__`."""
