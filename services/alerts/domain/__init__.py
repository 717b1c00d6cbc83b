"""The alerts' pure core: working time, threshold and silence state machines (no I/O)."""
