"""Simulator of the sector systems: realistic, deterministic event streams from Thanh Hóa's
communes across the reform of 1 July 2025, for ``make run``, tests and benchmarks."""
