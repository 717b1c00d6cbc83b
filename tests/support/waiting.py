"""Synchronise on conditions, never on time: poll a predicate until it holds or a deadline."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], bool],
    *,
    timeout_s: float = 60.0,
    every_s: float = 0.1,
    what: str = "condition",
) -> T:
    """Await ``probe()`` until ``until(result)``; AssertionError with the last result on timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if until(last):
            return last
        await asyncio.sleep(every_s)
    raise AssertionError(f"{what} not reached within {timeout_s}s; last value: {last!r}")


def eventually_sync(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    timeout_s: float = 60.0,
    every_s: float = 0.1,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if until(last):
            return last
        time.sleep(every_s)
    raise AssertionError(f"{what} not reached within {timeout_s}s; last value: {last!r}")
