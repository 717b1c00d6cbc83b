"""The threshold state machine, with hysteresis. Pure.

An alert opens when the KPI's value enters the red band and closes only when it is back in
the green band; a value in between (amber) changes nothing, so a value hovering between red
and green never flaps. No data (None) changes nothing either.

For a "higher is better" KPI red means ``value < red`` and green ``value ≥ green``; for a
"lower is better" KPI red means ``value > red`` and green ``value ≤ green``
(``schemas.kpi.Bands``).
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Direction = Literal["higher", "lower"]


class AlertState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class Action(StrEnum):
    NONE = "none"
    OPEN = "open"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where an alert opens (``red``) and where it closes (``green``)."""

    red: float
    green: float
    direction: Direction

    def __post_init__(self) -> None:
        ordered = self.green >= self.red if self.direction == "higher" else self.green <= self.red
        if not ordered:
            raise ValueError(f"green {self.green} and red {self.red} in the wrong order for {self.direction!r}")

    def is_red(self, value: float) -> bool:
        return value < self.red if self.direction == "higher" else value > self.red

    def is_green(self, value: float) -> bool:
        return value >= self.green if self.direction == "higher" else value <= self.green


@dataclass(frozen=True, slots=True)
class Step:
    state: AlertState
    action: Action


def step(state: AlertState, value: float | None, thresholds: Thresholds) -> Step:
    """The next state and what to do, given the current state and a fresh value."""
    if value is None:
        return Step(state, Action.NONE)
    if state is AlertState.CLOSED and thresholds.is_red(value):
        return Step(AlertState.OPEN, Action.OPEN)
    if state is AlertState.OPEN and thresholds.is_green(value):
        return Step(AlertState.CLOSED, Action.CLOSE)
    return Step(state, Action.NONE)


def judged_value(value: float | None, denominator: float | None, min_denominator: float) -> float | None:
    """The value a threshold rule judges: none (no judgement) when its ratio rests on fewer
    than ``min_denominator`` events - too few to open or close an alert on."""
    if denominator is not None and denominator < min_denominator:
        return None
    return value
