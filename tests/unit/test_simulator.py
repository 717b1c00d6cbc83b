"""The simulator's rules: events at commune level on both sides of the reform of 1 July 2025,
a pure function of (seed, hour), and the founding article's story - communes of Cẩm Thủy, Hà
Trung, Quảng Xương, Như Thanh, Như Xuân lead; those of Hậu Lộc, Nông Cống, Thọ Xuân lag."""

import datetime as dt
from collections import Counter, defaultdict
from functools import cache
from typing import Any

import pytest

from infra.migrate import reference_registry, reference_units
from schemas.envelope import ValidEvent, validate_event
from services.core.calendar import VN
from services.core.history import main_former
from services.core.units import UnitRegistry
from services.simulator.density import Density
from services.simulator.generator import SectorSystems
from services.simulator.profiles import GOOD_UNITS, LAGGING_UNITS
from services.simulator.projects import STAGE_COUNTS

REGISTRY = reference_registry()
REFORM = dt.date(2025, 7, 1)
EVE = dt.date(2025, 6, 30)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=VN)


def hour(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // 3600


def day_of(event: dict[str, Any]) -> dt.date:
    return dt.datetime.fromisoformat(event["time"]).astimezone(VN).date()


@cache
def across_reform() -> list[dict[str, Any]]:
    """Four days around 1 July 2025 at a low rate, with follow-ups crossing the reform."""
    sim = SectorSystems(REGISTRY, at("2025-06-29 00:00"), seed=11, events_per_hour=600)
    return list(sim.until(at("2025-07-03 00:00")))


def test_an_hour_is_a_pure_function_of_seed_and_hour() -> None:
    h = hour(at("2025-06-30 09:00"))
    fresh = SectorSystems(REGISTRY, at("2025-06-30 09:00"), seed=4, events_per_hour=1000)
    warmed = SectorSystems(REGISTRY, at("2025-06-29 20:00"), seed=4, events_per_hour=1000)
    list(warmed.until(at("2025-06-30 09:00")))  # thirteen other hours first
    first, again = fresh.hour_events(h), warmed.hour_events(h)
    assert first and [s.event for s in first] == [s.event for s in again]
    assert [s.deliver_at for s in first] == [s.deliver_at for s in again]
    other_seed = SectorSystems(REGISTRY, at("2025-06-30 09:00"), seed=5, events_per_hour=1000).hour_events(h)
    assert {s.event["id"] for s in other_seed}.isdisjoint({s.event["id"] for s in first})


def test_ids_name_their_hour_and_follow_ups_keep_their_origin_hour() -> None:
    sim = SectorSystems(REGISTRY, at("2025-06-30 09:00"), seed=4, events_per_hour=3000)
    h = hour(at("2025-06-30 09:00"))
    scheduled = sim.hour_events(h)
    assert all(s.event["id"].startswith(f"s4-{h}-") for s in scheduled)
    later = [s for s in scheduled if s.deliver_at >= (h + 1) * 3600]
    assert any(s.event["type"].endswith("dossier.resolved") for s in later)  # days later, same origin
    by_id: dict[str, dict[str, Any]] = {}
    for s in scheduled:  # a duplicate is the same event again, never another event with that id
        assert by_id.setdefault(s.event["id"], s.event) == s.event


def test_events_come_from_communes_valid_at_their_time_never_from_districts() -> None:
    events = across_reform()
    assert len(events) > 20_000
    for event in events:  # the unit the code denotes on the event's local day: a commune
        unit = REGISTRY.get(event["unit"], day_of(event))
        assert unit is not None and unit.level == 3, event
    before = {REGISTRY.get(e["unit"], day_of(e)).key for e in events if day_of(e) == EVE}
    after = {REGISTRY.get(e["unit"], day_of(e)).key for e in events if day_of(e) == REFORM}
    assert all(REGISTRY.by_key(k).valid_to == EVE for k in before)  # the old communes …
    assert all(REGISTRY.by_key(k).valid_from == REFORM for k in after)  # … then the new ones
    assert len(before) > 500 and len(after) == 166


def test_every_event_is_valid_and_dossiers_keep_their_id_across_the_reform() -> None:
    events = across_reform()
    for event in events[::7]:
        assert isinstance(validate_event(event), ValidEvent), event
    received = {e["data"]["dossier_id"]: e for e in events if e["type"].endswith("dossier.received")}
    crossing = [
        e
        for e in events
        if e["type"].endswith("dossier.resolved")
        and e["data"]["dossier_id"] in received
        and day_of(received[e["data"]["dossier_id"]]) <= EVE < day_of(e)
    ]
    assert crossing, "some dossiers received before the reform are resolved after it"
    for event in crossing:  # resolved by the commune that took over the old commune's work
        old = REGISTRY.get(received[event["data"]["dossier_id"]]["unit"], EVE)
        assert event["unit"] in {new.code for new, _link in REGISTRY.successors(old)}


def test_volume_follows_population() -> None:
    sim = SectorSystems(REGISTRY, at("2025-07-07 00:00"), seed=2)
    new = REGISTRY.at_level(3, REFORM)
    assert all(sim.profiles.of(u).weight == u.population for u in new)
    old = REGISTRY.at_level(3, EVE)
    by_district: defaultdict[str, float] = defaultdict(float)
    for unit in old:
        district = sim.profiles.district(unit)
        assert district is not None and district.level == 2
        by_district[district.code] += sim.profiles.of(unit).weight
    for code, weight in by_district.items():  # an old commune: its share of its district's people
        assert weight == pytest.approx(REGISTRY.get(code, dt.date(2024, 12, 31)).population)


def _formed_from(units: list[Any], districts: frozenset[str]) -> list[Any]:
    return [u for u in units if (m := main_former(REGISTRY, u)) is not None and m.code in districts]


def test_profiles_tell_the_story_at_commune_level_on_both_sides_of_the_reform() -> None:
    sim = SectorSystems(REGISTRY, at("2025-07-07 00:00"), seed=1)
    p = sim.profiles
    old = REGISTRY.at_level(3, EVE)
    old_good = [p.of(u) for u in old if p.district(u).code in GOOD_UNITS]
    old_lag = [p.of(u) for u in old if p.district(u).code in LAGGING_UNITS]
    new = REGISTRY.at_level(3, REFORM)
    new_good = [p.of(u) for u in _formed_from(new, GOOD_UNITS)]
    new_lag = [p.of(u) for u in _formed_from(new, LAGGING_UNITS)]
    assert len(new_good) == 29 and len(new_lag) == 20
    for good, lag in ((old_good, old_lag), (new_good, new_lag)):
        assert min(x.digital for x in good) > max(x.digital for x in lag) + 0.3
        assert min(x.on_time for x in good) > max(x.on_time for x in lag) + 0.2
        assert min(x.signed for x in good) > max(x.signed for x in lag) + 0.3
        assert all(x.on_system == 0 for x in lag)  # incoming documents entirely off the system
        assert min(x.on_system for x in good) > 0.7


def test_a_new_commune_behaves_like_the_communes_it_was_formed_from() -> None:
    sim = SectorSystems(REGISTRY, at("2025-07-07 00:00"), seed=1)
    for unit in REGISTRY.at_level(3, REFORM):
        olds = [sim.profiles.of(old) for old, _link in REGISTRY.predecessors(unit)]
        mine = sim.profiles.of(unit)
        for rate in ("digital", "on_time", "signed", "cashless"):
            values = [getattr(o, rate) for o in olds]
            assert min(values) - 1e-9 <= getattr(mine, rate) <= max(values) + 1e-9, (unit.code, rate)


def test_events_rank_former_districts_and_their_communes_as_the_article_did() -> None:
    """A day of e-government events after the reform: by the former district their commune
    was formed from, online dossiers, signed outgoing and on-system incoming documents put the
    article's five on top and its three at the bottom; the three handle nothing on the system."""
    egov_only = Density(
        full_from=at("2030-01-01 00:00").timestamp(), egov_near=1, egov_days=1e9, usage_near=0, usage_floor=0
    )
    sim = SectorSystems(REGISTRY, at("2025-07-07 00:00"), seed=11, events_per_hour=20_000, density=egov_only)
    flags: defaultdict[str, list[bool]] = defaultdict(list)
    for event in sim.until(at("2025-07-08 00:00")):
        former = main_former(REGISTRY, REGISTRY.get(event["unit"], day_of(event))).code
        data, kind = event["data"], event["type"].split(".", 4)[4]
        if kind == "dossier.received":
            flags[former].append(data["channel"] == "online")
        elif kind == "document.outgoing_issued":
            flags[former].append(data["agency_signed"])
        elif kind == "document.incoming_registered":
            flags[former].append(data["processed_on_system"])
            assert former not in LAGGING_UNITS or not data["processed_on_system"]
    assert min(len(f) for f in flags.values()) > 150
    rate = {code: sum(f) / len(f) for code, f in flags.items()}
    ranking = sorted(rate, key=lambda code: rate[code], reverse=True)
    assert set(ranking[:5]) == GOOD_UNITS and set(ranking[-3:]) == LAGGING_UNITS, rate


def test_history_is_lighter_and_weighted_towards_e_government() -> None:
    now = at("2026-12-02 10:00")
    density = Density(full_from=(now - dt.timedelta(days=1)).timestamp())
    sim = SectorSystems(REGISTRY, at("2025-03-03 00:00"), seed=1, events_per_hour=6000, density=density)
    old = [
        s.event for h in range(hour(at("2025-03-03 00:00")), hour(at("2025-03-10 00:00"))) for s in sim.hour_events(h)
    ]
    recent = [s.event for s in sim.hour_events(hour(at("2026-12-02 09:00")))]
    egov = ("dossier", "document")

    def egov_share(events: list[dict[str, Any]]) -> float:
        return sum(1 for e in events if e["type"].split(".")[4] in egov) / len(events)

    assert len(old) < 6000 * 168 * 0.05 and len(recent) > 6000 * 0.8
    assert egov_share(old) > 0.5 > egov_share(recent)
    dossiers = sum(1 for e in old if e["type"].endswith("dossier.received"))
    assert dossiers > 500  # a week of history still has dossiers for every ranking


def test_projects_report_weekly_from_communes_with_the_articles_portfolio() -> None:
    sim = SectorSystems(REGISTRY, at("2024-01-01 00:00"), seed=1, events_per_hour=0)
    reports = [s.event for s in sim.hour_events(hour(at("2024-01-01 09:00")))]
    distinct = {e["id"]: e for e in reports}.values()  # a duplicate delivery is the same report
    stages = Counter(e["data"]["stage"] for e in distinct if e["type"].endswith("stage_changed"))
    assert stages == STAGE_COUNTS
    assert all(REGISTRY.get(e["unit"], dt.date(2024, 1, 1)).level == 3 for e in reports)
    assert not sim.hour_events(hour(at("2024-01-01 10:00")))  # nothing else at rate 0
    later = [s.event for s in sim.hour_events(hour(at("2026-11-30 09:00")))]
    assert {e["data"]["project_id"] for e in later} == {e["data"]["project_id"] for e in reports}
    assert all(REGISTRY.get(e["unit"], dt.date(2026, 11, 30)).valid_from == REFORM for e in later)
    later_distinct = {e["id"]: e for e in later}.values()
    moved = Counter(e["data"]["stage"] for e in later_distinct if e["type"].endswith("stage_changed"))
    assert moved["completed"] > STAGE_COUNTS["completed"]


def test_a_list_of_units_still_works_and_sends_only_valid_events() -> None:
    """The tests and benchmarks of May 2025 pass ``reference_units()``: no succession links,
    so a follow-up nobody carries after the reform is not sent rather than sent invalid."""
    units = reference_units()
    sim = SectorSystems(units, dt.datetime(2025, 5, 5, tzinfo=dt.UTC), seed=5, events_per_hour=3000)
    events = sim.take(5000)
    assert len(events) == 5000
    registry = UnitRegistry.from_units(units)
    assert all(registry.get(e["unit"], day_of(e)).level == 3 for e in events)
    crossing = SectorSystems(units, at("2025-06-29 00:00"), seed=5, events_per_hour=300)
    for event in crossing.until(at("2025-07-02 00:00")):
        assert registry.check(event["unit"], dt.datetime.fromisoformat(event["time"])) is None
