"""What the alerts agents do, without faust: judge KPI updates, record and check silences.

The state machines (``services.alerts.domain``) decide; :class:`~services.alerts.store.AlertStore`
makes their decisions durable. State lives in two faust tables handed in as mappings:

- ``threshold``: ``"<rule>|<unit>"`` → ``{"state": "open"|"closed", "value": …, "at": iso}``,
  written on every transition by the agent and by the sweep;
- ``seen``: ``"<family>|<unit>"`` → epoch seconds of the latest matching event, plus
  ``FIRST_START_KEY`` → epoch seconds of the worker's first start (silent-since for units
  never heard from; persisted so a restart does not reset it).

PostgreSQL is the authority on which alerts are live: the live sets are loaded from it at
start and kept with every transition, and the state machines start from them, so a table
lost with the broker (Tansu keeps nothing) never leaves an alert behind.

The threshold *sweep* (at start and every ``ALERTS_SWEEP_S``) judges every alerting KPI of
every reporting unit: KPI values also move without a counter change (the window slides,
open dossiers become overdue), a kpi-updates message may be lost, and after a SIGKILL on
the embedded broker faust was seen to resume a partition past unprocessed messages.
"""

import asyncio
import datetime as dt
import functools
from collections.abc import Awaitable, Callable, MutableMapping
from itertools import groupby
from typing import Any, TypeVar

import asyncpg
import orjson
import structlog
from prometheus_client import Counter, Gauge

from schemas.kpi import KpiRegistry
from schemas.streams import KpiUpdate
from services.alerts.rules import Rules, SilenceRule, ThresholdRule
from services.core.alerting import silence as silence_machine
from services.core.alerting import threshold as threshold_machine
from services.core.alerting.threshold import Action, AlertState, judged_value
from services.core.alerting.worktime import Calendar
from services.core.calendar import local
from services.core.kpis.formulas import KpiValue, counters_of
from services.core.units import UnitRegistry
from services.readmodels.alerts import AlertStore, NewAlert, dedupe_key
from services.readmodels.counters import KpiStore
from services.readmodels.kpis import KpiReader, Period
from services.runtime.clock import Clock
from services.runtime.db import UNAVAILABLE_ERRORS
from services.runtime.retry import call_retrying

log = structlog.get_logger(__name__)
T = TypeVar("T")

FIRST_START_KEY = "__first_start__"

UPDATES = Counter("alerts_kpi_updates_total", "kpi-updates messages judged")
EVALUATIONS = Counter("alerts_threshold_evaluations_total", "KPI values judged against thresholds")
SECTOR_EVENTS = Counter("alerts_sector_events_total", "Sector-topic records read", ["matched"])
SILENCE_CHECKS = Counter("alerts_silence_checks_total", "Silence checks of every (family, unit)")
SWEEPS = Counter("alerts_threshold_sweeps_total", "Judgements of every alerting KPI of every unit")
TRANSITIONS = Counter("alerts_transitions_total", "Alerts opened and closed", ["kind", "action"])
LIVE = Gauge("alerts_live", "Open or acknowledged alerts", ["kind"])
CLOCK = Gauge("alerts_clock_seconds", "The worker's now (epoch seconds) at the last silence check")


def _epoch(moment: dt.datetime) -> float:
    return moment.timestamp()


def _at(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


async def retrying(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` until PostgreSQL answers: an agent must not drop (ack) what it could not do."""
    return await call_retrying(what, call, (*UNAVAILABLE_ERRORS, asyncpg.PostgresConnectionError))


class AlertsWorker:
    def __init__(
        self,
        *,
        rules: Rules,
        calendar: Calendar,
        kpis: KpiRegistry,
        store: AlertStore,
        registry: Callable[[], UnitRegistry | None],
        clock: Clock,
        on_transition: Callable[[], None] = lambda: None,
    ) -> None:
        self.rules = rules
        self.calendar = calendar
        self.kpis = kpis
        self.store = store
        self.registry = registry
        self.clock = clock
        self.on_transition = on_transition
        self.started_at = clock.now()
        self.live: dict[str, dict[tuple[str, str], int]] = {"threshold": {}, "silence": {}}
        self.silence_lock = asyncio.Lock()
        self.threshold_lock = asyncio.Lock()
        self._first_start_saved = False

    async def load_live(self) -> None:
        for kind in ("threshold", "silence"):
            self.live[kind] = await retrying("load live alerts", lambda k=kind: self.store.live(k))  # type: ignore[misc]
            LIVE.labels(kind).set(len(self.live[kind]))
        log.info("live alerts loaded", **{k: len(v) for k, v in self.live.items()})

    def _units(self) -> UnitRegistry:
        registry = self.registry()
        if registry is None:
            raise RuntimeError("unit registry not loaded")
        return registry

    # -- thresholds ------------------------------------------------------------------------
    def rules_for(self, update: KpiUpdate) -> list[ThresholdRule]:
        changed = set(update.metrics)
        return [r for r in self.rules.thresholds if counters_of(r.kpi) & changed]

    async def on_update(self, update: KpiUpdate, table: MutableMapping[str, Any]) -> None:
        """Recompute every alerting KPI the update touched for its unit, over the rolling
        window ending now, and feed the threshold state machine."""
        UPDATES.inc()
        registry = self._units()
        unit = update.unit
        if unit not in registry:
            log.warning("kpi update for an unknown unit", unit=unit)
            return
        await self._judge_all(self.rules_for(update), [unit], registry, table)

    async def sweep(self, table: MutableMapping[str, Any]) -> None:
        """Judge every alerting KPI of every reporting unit now."""
        now = self.clock.now()
        await self._judge_all(list(self.rules.thresholds), self.reporting_units(now), self._units(), table)
        SWEEPS.inc()

    async def _judge_all(
        self, rules: list[ThresholdRule], units: list[str], registry: UnitRegistry, table: MutableMapping[str, Any]
    ) -> None:
        if not rules or not units:
            return
        reader = KpiReader(KpiStore(self.store.pool), self.kpis, registry)
        async with self.threshold_lock:
            now = self.clock.now()
            for window, group in groupby(sorted(rules, key=lambda r: r.window_days), key=lambda r: r.window_days):
                judged = list(group)
                period = Period.window(now, window)
                kpis = [r.kpi for r in judged]

                # each code as the unit it denotes now, restated over the window if it is new
                today = local(now).date()
                subjects = {
                    code: reader.subject(u, period) for code in units if (u := registry.get(code, today)) is not None
                }

                read = functools.partial(reader.values, kpis, list(subjects.values()), None, now)
                values = await retrying("kpi values", read)
                for code, subject in subjects.items():
                    for rule in judged:
                        await self._judge(rule, code, values[subject.key][rule.kpi.id], now, table)

    async def _judge(
        self, rule: ThresholdRule, unit: str, result: KpiValue, now: dt.datetime, table: MutableMapping[str, Any]
    ) -> None:
        EVALUATIONS.inc()
        key = dedupe_key(rule.id, unit)
        prior = table.get(key)
        state = AlertState.OPEN if (rule.id, unit) in self.live["threshold"] else AlertState.CLOSED
        value = judged_value(result.value, result.denominator, rule.min_denominator)
        step = threshold_machine.step(state, value, rule.thresholds)
        detail = {
            "value": value,
            "numerator": result.numerator,
            "denominator": result.denominator,
            "status": result.status,
            "evaluated_at": now.isoformat(),
        }
        if step.action is Action.OPEN:
            alert = NewAlert(
                kind="threshold",
                rule_id=rule.id,
                unit=unit,
                sector=rule.sector,
                kpi=rule.kpi.id,
                family=None,
                details={
                    **detail,
                    "title": rule.kpi.name_vi,
                    "title_en": rule.kpi.name_en,
                    "unit_of_measure": rule.kpi.unit,
                    "direction": rule.kpi.direction,
                    "threshold": rule.thresholds.red,
                    "close_threshold": rule.thresholds.green,
                    "window_days": rule.window_days,
                },
            )
            await self._open(alert, now)
        elif step.action is Action.CLOSE:
            await self._close("threshold", rule.id, unit, now, detail)
        elif state is AlertState.OPEN and value is not None:
            await retrying("refresh alert", lambda: self.store.refresh(rule.id, unit, detail))
        if prior is None or prior.get("state") != step.state.value:
            table[key] = {"state": step.state.value, "value": value, "at": now.isoformat()}

    async def _open(self, alert: NewAlert, now: dt.datetime) -> None:
        row = await retrying("open alert", lambda: self.store.open(alert, now))
        if row is not None:
            self.live[alert.kind][(alert.rule_id, alert.unit)] = row["id"]
            TRANSITIONS.labels(alert.kind, "open").inc()
            log.info(
                "alert opened",
                alert_id=row["id"],
                rule=alert.rule_id,
                unit=alert.unit,
                value=alert.details.get("value"),
            )
            self.on_transition()
        else:  # already live (a replay): make sure we know it
            live = await retrying("live alerts", lambda: self.store.live(alert.kind))
            self.live[alert.kind] = live
        LIVE.labels(alert.kind).set(len(self.live[alert.kind]))

    async def _close(self, kind: str, rule_id: str, unit: str, now: dt.datetime, detail: dict[str, Any]) -> None:
        row = await retrying("close alert", lambda: self.store.close(rule_id, unit, now, detail))
        self.live[kind].pop((rule_id, unit), None)
        LIVE.labels(kind).set(len(self.live[kind]))
        if row is not None:
            TRANSITIONS.labels(kind, "close").inc()
            log.info("alert closed", alert_id=row["id"], rule=rule_id, unit=unit)
            self.on_transition()

    # -- silences --------------------------------------------------------------------------
    def watching_since(self, table: MutableMapping[str, Any]) -> dt.datetime:
        saved = table.get(FIRST_START_KEY)
        return _at(saved) or self.started_at

    async def on_record(self, headers: dict[str, bytes], value: bytes | None, table: MutableMapping[str, Any]) -> None:
        """One sector-topic record (CloudEvents binary mode): remember matching events and
        close a live silence alert the event ends."""
        if not self._first_start_saved:
            if table.get(FIRST_START_KEY) is None:
                table[FIRST_START_KEY] = _epoch(self.started_at)
            self._first_start_saved = True
        type_b = headers.get("ce_type")
        type_ = type_b.decode(errors="replace") if type_b else ""
        candidates = [r for r in self.rules.silences if r.matches_type(type_)]
        if not candidates:
            SECTOR_EVENTS.labels("no").inc()
            return
        try:
            data = orjson.loads(value or b"null")
            unit = headers["ce_unit"].decode()
            at = dt.datetime.fromisoformat(headers["ce_time"].decode())
            if at.tzinfo is None or not isinstance(data, dict):
                raise ValueError("naive time or data not an object")
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            log.debug("record ignored", reason=str(exc))
            SECTOR_EVENTS.labels("no").inc()
            return
        matched = False
        for rule in candidates:
            if not rule.matches(type_, data):
                continue
            matched = True
            key = f"{rule.family}|{unit}"
            previous = table.get(key)
            latest = silence_machine.latest(_at(previous), at)
            if previous is None or _epoch(latest) > previous:
                table[key] = _epoch(latest)
            if (rule.id, unit) in self.live["silence"]:
                await self._end_silence(rule, unit, latest, table)
        SECTOR_EVENTS.labels("yes" if matched else "no").inc()

    async def _end_silence(
        self, rule: SilenceRule, unit: str, last_seen: dt.datetime, table: MutableMapping[str, Any]
    ) -> None:
        async with self.silence_lock:
            now = self.clock.now()
            silence = silence_machine.Silence(last_seen, self.watching_since(table))
            step = silence_machine.on_event(
                AlertState.OPEN, silence, now, self.rules.silence_period_s(rule), self.calendar
            )
            if step.action is Action.CLOSE:
                detail = {"last_seen": last_seen.isoformat(), "evaluated_at": now.isoformat()}
                await self._close("silence", rule.id, unit, now, detail)

    def reporting_units(self, now: dt.datetime) -> list[str]:
        """Units valid now that have no valid sub-unit: the ones that send events."""
        registry = self._units()
        day = local(now).date()
        valid = [u for u in registry.all_units() if u.valid_on(day)]
        parents = {u.parent_on(day) for u in valid}
        return sorted(u.code for u in valid if u.code not in parents)

    async def check_silences(self, table: MutableMapping[str, Any]) -> None:
        """The periodic check: every (family, unit) valid now against the clock."""
        async with self.silence_lock:
            now = self.clock.now()
            since = self.watching_since(table)
            live = self.live["silence"]
            for rule in self.rules.silences:
                period_s = self.rules.silence_period_s(rule)
                for unit in self.reporting_units(now):
                    last = _at(table.get(f"{rule.family}|{unit}"))
                    silence = silence_machine.Silence(last, since)
                    state = AlertState.OPEN if (rule.id, unit) in live else AlertState.CLOSED
                    step = silence_machine.on_tick(state, silence, now, period_s, self.calendar)
                    silent_h = round(self.calendar.working_hours(silence.since, now), 3) if since < now else 0.0
                    detail = {
                        "value": silent_h,
                        "silent_since": silence.since.isoformat(),
                        "evaluated_at": now.isoformat(),
                    }
                    if step.action is Action.OPEN:
                        await self._open(
                            NewAlert(
                                kind="silence",
                                rule_id=rule.id,
                                unit=unit,
                                sector=rule.sector,
                                kpi=None,
                                family=rule.family,
                                details={
                                    **detail,
                                    "title": rule.name_vi,
                                    "title_en": rule.name_en,
                                    "unit_of_measure": "working hours",
                                    "threshold": rule.period_working_hours,
                                    "last_seen": last.isoformat() if last else None,
                                },
                            ),
                            now,
                        )
                    elif state is AlertState.OPEN:
                        await retrying("refresh alert", lambda r=rule, u=unit, d=detail: self.store.refresh(r.id, u, d))  # type: ignore[misc]
            SILENCE_CHECKS.inc()
            CLOCK.set(now.timestamp())
