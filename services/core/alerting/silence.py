"""The silence state machine. Pure.

A (family, unit) is silent when at least ``period`` working seconds have passed since its
last matching event - or, for a unit never heard from, since the watcher first started.
Working time follows a :class:`~services.alerts.domain.worktime.Calendar`, so nights,
weekends and holidays never count.

- :func:`on_tick` (the periodic check): closed → open when silent for the period.
- :func:`on_event` (a matching event): open → closed when, with the event, the unit is no
  longer silent. A late event from long ago does not close a current silence.
"""

import datetime as dt
from dataclasses import dataclass

from services.core.alerting.threshold import Action, AlertState, Step
from services.core.alerting.worktime import Calendar


@dataclass(frozen=True, slots=True)
class Silence:
    """What the watcher knows of one (family, unit)."""

    last_seen: dt.datetime | None  # time of the latest matching event, None if never
    watching_since: dt.datetime  # the watcher's first start (persisted across restarts)

    @property
    def since(self) -> dt.datetime:
        """The instant the silence is measured from."""
        if self.last_seen is None:
            return self.watching_since
        return max(self.last_seen, self.watching_since)


def is_silent(silence: Silence, now: dt.datetime, period_s: float, calendar: Calendar) -> bool:
    """True when at least ``period_s`` (> 0) working seconds passed between ``since`` and now."""
    if period_s <= 0:
        raise ValueError("a silence period must be positive")
    since = silence.since
    if since >= now:
        return False
    return calendar.add_working(since, period_s) <= now


def on_tick(state: AlertState, silence: Silence, now: dt.datetime, period_s: float, calendar: Calendar) -> Step:
    if state is AlertState.CLOSED and is_silent(silence, now, period_s, calendar):
        return Step(AlertState.OPEN, Action.OPEN)
    return Step(state, Action.NONE)


def on_event(state: AlertState, silence: Silence, now: dt.datetime, period_s: float, calendar: Calendar) -> Step:
    """``silence`` already includes the new event."""
    if state is AlertState.OPEN and not is_silent(silence, now, period_s, calendar):
        return Step(AlertState.CLOSED, Action.CLOSE)
    return Step(state, Action.NONE)


def latest(previous: dt.datetime | None, event_time: dt.datetime) -> dt.datetime:
    """The last-seen time after an event (events may arrive out of order)."""
    return event_time if previous is None or event_time > previous else previous
