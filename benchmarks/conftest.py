"""Benchmarks share the ``impl`` fixture of the top-level conftest.py; nothing else is needed here."""
