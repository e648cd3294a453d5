"""Benchmarks for ``make bench``: the platform service, the SDK worker and the template (see README.md)."""
