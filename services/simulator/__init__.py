"""Simulator of the sector systems: realistic, deterministic event streams for the 27
district-level units, for ``make run``, tests and benchmarks."""
