"""Alert rules and the office calendar, loaded from data files and validated at load.

- Threshold rules: one per KPI of the registry with ``alert = true`` (minus ``exclude``),
  window = the KPI's ``window_days``, opening at its red band and closing at its green band.
- Silence rules: the ``[[silence]]`` blocks of ``rules.toml``.
- The calendar: ``holidays_vn.toml``.

``ALERTS_SILENCE_SCALE`` multiplies every silence period and ``ALERTS_SILENCE_PERIODS``
(JSON ``{"family": working hours}``) overrides single ones - the dev stack uses them to see
silence alerts within minutes instead of hours.
"""

import datetime as dt
import fnmatch
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.kpi import KpiDefinition, KpiRegistry
from services.core.alerting.threshold import Thresholds
from services.core.alerting.worktime import Calendar

HERE = Path(__file__).parent
RULES_PATH = HERE / "rules.toml"
HOLIDAYS_PATH = HERE / "holidays_vn.toml"


class ThresholdTuning(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_denominator: float = Field(default=1, ge=0)
    exclude: tuple[str, ...] = ()


class SilenceRule(BaseModel):
    """A family of events a unit is expected to keep sending."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    family: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_vi: str
    name_en: str
    types: tuple[str, ...] = Field(min_length=1)
    where: dict[str, str | bool | int | float] = Field(default_factory=dict)
    period_working_hours: float = Field(gt=0)
    sector: str | None = None

    @property
    def id(self) -> str:
        return f"silence.{self.family}"

    def matches_type(self, type_: str) -> bool:
        return any(fnmatch.fnmatchcase(type_, pattern) for pattern in self.types)

    def matches(self, type_: str, data: dict[str, Any]) -> bool:
        """Type matches a pattern and every ``where`` field equals the data's (bools strictly)."""
        if not self.matches_type(type_):
            return False
        return all(k in data and type(data[k]) is type(v) and data[k] == v for k, v in self.where.items())


class RulesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    threshold: ThresholdTuning = ThresholdTuning()
    silence: tuple[SilenceRule, ...] = ()

    @field_validator("silence")
    @classmethod
    def _unique(cls, rules: tuple[SilenceRule, ...]) -> tuple[SilenceRule, ...]:
        families = [r.family for r in rules]
        if len(set(families)) != len(families):
            raise ValueError(f"duplicate silence families: {families}")
        return rules


class ThresholdRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    kpi: KpiDefinition
    thresholds: Thresholds
    window_days: int
    min_denominator: float

    @property
    def id(self) -> str:
        return f"threshold.{self.kpi.id}"

    @property
    def sector(self) -> str | None:
        sectors = self.kpi.sectors
        return sectors[0] if sectors and len(sectors) == 1 else None


class Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    version: str
    thresholds: tuple[ThresholdRule, ...]
    silences: tuple[SilenceRule, ...]

    def silence_period_s(self, rule: SilenceRule) -> float:
        return rule.period_working_hours * 3600


def threshold_rules(registry: KpiRegistry, tuning: ThresholdTuning) -> tuple[ThresholdRule, ...]:
    unknown = set(tuning.exclude) - {k.id for k in registry.kpis}
    if unknown:
        raise ValueError(f"[threshold] exclude names unknown KPIs: {sorted(unknown)}")
    rules = []
    for kpi in registry.kpis:
        if not kpi.alert or kpi.id in tuning.exclude:
            continue
        if kpi.bands is None or kpi.basis != "events" or not kpi.computable:
            raise ValueError(f"KPI {kpi.id} has alert = true but no bands or no time series")
        rules.append(
            ThresholdRule(
                kpi=kpi,
                thresholds=Thresholds(red=kpi.bands.red, green=kpi.bands.green, direction=kpi.direction),
                window_days=kpi.window_days,
                min_denominator=tuning.min_denominator,
            )
        )
    return tuple(rules)


def load_rules(
    registry: KpiRegistry,
    path: Path = RULES_PATH,
    *,
    silence_scale: float = 1.0,
    silence_periods: dict[str, float] | None = None,
) -> Rules:
    """Parse and validate the rules file; raises ValueError with the reason."""
    raw = RulesFile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    overrides = silence_periods or {}
    unknown = set(overrides) - {r.family for r in raw.silence}
    if unknown:
        raise ValueError(f"silence period overrides for unknown families: {sorted(unknown)}")
    if silence_scale <= 0:
        raise ValueError("the silence scale must be positive")
    silences = tuple(
        r.model_copy(update={"period_working_hours": overrides.get(r.family, r.period_working_hours * silence_scale)})
        for r in raw.silence
    )
    return Rules(version=raw.version, thresholds=threshold_rules(registry, raw.threshold), silences=silences)


_HHMM = re.compile(r"^(\d{2}):(\d{2})$")


def _time(text: str) -> dt.time:
    match = _HHMM.match(text)
    if match is None:
        raise ValueError(f"office hours are HH:MM, not {text!r}")
    return dt.time(int(match[1]), int(match[2]))


def load_calendar(path: Path = HOLIDAYS_PATH) -> Calendar:
    """The office calendar: hours, holidays and swapped working Saturdays of every year listed."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    holidays: set[dt.date] = set()
    saturdays: set[dt.date] = set()
    for year in raw.get("year", []):
        for entry in year.get("holidays", []):
            day = entry["date"]
            if not isinstance(day, dt.date) or day.year != year["year"]:
                raise ValueError(f"holiday {entry!r} is not a date of {year['year']}")
            holidays.add(day)
        for day in year.get("working_saturdays", []):
            if not isinstance(day, dt.date) or day.weekday() != 5:
                raise ValueError(f"working Saturday {day!r} is not a Saturday")
            saturdays.add(day)
    hours = tuple((_time(a), _time(b)) for a, b in raw.get("office_hours", [["07:30", "11:30"], ["13:30", "17:00"]]))
    return Calendar(
        holidays=frozenset(holidays),
        working_days=frozenset(saturdays),
        hours=hours,
        zone=ZoneInfo(raw.get("zone", "Asia/Ho_Chi_Minh")),
    )
