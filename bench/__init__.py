"""Benchmarks for Stepflow (run a module with `python -m bench.<name>`)."""
