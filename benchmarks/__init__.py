"""Benchmarks: ``python -m benchmarks.<name>``; each prints one JSON object as its last line."""
