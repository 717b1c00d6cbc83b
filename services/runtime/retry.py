"""The one retry policy of the system, on tenacity: exponential back-off, capped, with jitter.

Every loop that waits for a dependency - PostgreSQL at start, a partition claim, an alert
transition, a sector service the simulator posts to - retries with :func:`retrying` (async)
or :func:`retrying_sync` (a thread); the notification outbox and the dev-stack supervisor,
which schedule their next attempt rather than sleep, take its delays from :func:`delay_s`.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import structlog
import tenacity

log = structlog.get_logger(__name__)
T = TypeVar("T")

FIRST_S = 0.2  # first wait
CAP_S = 5.0  # longest wait between attempts


def _wait(first_s: float, cap_s: float) -> tenacity.wait.wait_base:
    return tenacity.wait_exponential_jitter(initial=first_s, max=cap_s, jitter=first_s)


def _log(what: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("retrying", what=what, attempt=state.attempt_number, error=str(error), in_s=round(wait, 2))

    return before_sleep


def retrying(
    what: str,
    errors: tuple[type[BaseException], ...],
    *,
    give_up_after_s: float | None = None,
    first_s: float = FIRST_S,
    cap_s: float = CAP_S,
    while_: Callable[[], bool] | None = None,
) -> tenacity.AsyncRetrying:
    """``async for attempt in retrying(...): with attempt: ...`` - retries on ``errors``, for
    ever or until ``give_up_after_s`` (then the last error is raised), and only while
    ``while_()`` holds (if given)."""
    stop: tenacity.stop.stop_base = tenacity.stop_never
    if give_up_after_s is not None:
        stop = tenacity.stop_after_delay(give_up_after_s)
    if while_ is not None:
        keep_going = while_
        stop = stop | tenacity.stop_when_event_set(_Flag(keep_going))  # type: ignore[arg-type]
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(errors),
        wait=_wait(first_s, cap_s),
        stop=stop,
        reraise=True,
        before_sleep=_log(what),
    )


def retrying_sync(
    what: str,
    errors: tuple[type[BaseException], ...],
    *,
    while_: Callable[[], bool] | None = None,
    first_s: float = FIRST_S,
    cap_s: float = CAP_S,
) -> tenacity.Retrying:
    """The same policy for blocking code (a thread)."""
    stop: tenacity.stop.stop_base = tenacity.stop_never
    if while_ is not None:
        stop = tenacity.stop_when_event_set(_Flag(while_))  # type: ignore[arg-type]
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(errors),
        wait=_wait(first_s, cap_s),
        stop=stop,
        reraise=True,
        before_sleep=_log(what),
    )


@dataclass(frozen=True, slots=True)
class _Flag:
    """An event-like view of "stop retrying": set once ``keep_going()`` is false."""

    keep_going: Callable[[], bool]

    def is_set(self) -> bool:
        return not self.keep_going()


@dataclass(frozen=True, slots=True)
class _Attempt:
    attempt_number: int


def delay_s(attempt: int, first_s: float = FIRST_S, cap_s: float = CAP_S) -> float:
    """The wait before attempt ``attempt + 1`` (``first_s × 2^(attempt-1)``, capped), without
    jitter: for loops that schedule a later attempt instead of sleeping."""
    wait = tenacity.wait_exponential(multiplier=first_s, max=cap_s)
    return float(wait(cast(Any, _Attempt(max(1, attempt)))))


async def call_retrying(
    what: str,
    call: Callable[[], Awaitable[T]],
    errors: tuple[type[BaseException], ...],
    **policy: Any,
) -> T:
    """``await call()`` under :func:`retrying` (same keyword arguments); its result."""
    async for attempt in retrying(what, errors, **policy):
        with attempt:
            return await call()
    raise AssertionError("retrying() ends by returning or raising")  # pragma: no cover
