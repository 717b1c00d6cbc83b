"""A deterministic generator of the events sector systems send.

Given a seed, a start time and the units, :class:`SectorSystems` produces the same events
in the same order every time. Events come out in *delivery* order: a late event carries
its real event time but is delivered hours or days later; a duplicate is the same event
(same ``source`` and ``id``) delivered again. Dossiers live through received → (supplement
requested → resumed) → resolved → paid → rated over days; projects change stage and
report progress.
"""

import datetime as dt
import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from schemas.events.projects import PROJECT_STAGES
from services.core.calendar import VN, local_date
from services.core.units import Unit
from services.simulator.profiles import UnitProfile, activity, profile_for

PREFIX = "vn.gov.thanhhoa"
CARE_TYPES = ("outpatient_exam",) * 6 + ("outpatient_treatment", "inpatient", "day_inpatient")
SCHOOL_LEVELS = ("preschool", "primary", "lower_secondary", "upper_secondary")
TICKET_QUANTITIES = (1, 1, 1, 2, 2, 3, 4)

# Relative frequency of each kind of activity per sector (per unit of weight and activity).
MIX: dict[str, dict[str, float]] = {
    "education": {"enrolment": 3, "elearning": 8, "fee": 3, "dossier": 0.6, "incoming": 0.6, "outgoing": 0.5},
    "health": {
        "appointment": 6,
        "checkin": 8,
        "closed": 7,
        "telemedicine": 0.5,
        "dossier": 0.4,
        "incoming": 0.6,
        "outgoing": 0.5,
    },
    "transport": {"fare": 40, "departure": 4, "parking": 5, "dossier": 0.5, "incoming": 0.3, "outgoing": 0.3},
    "culture": {"ticket": 4, "entry": 6, "library": 2, "dossier": 0.3, "incoming": 0.4, "outgoing": 0.3},
}
_MIX_TOTAL = sum(sum(kinds.values()) for kinds in MIX.values())
# Mean of activity() over a week, weighted by the mix: normalises volume to events/hour.
_WEEK_ACTIVITY = {sector: sum(activity(sector, h, d) for h in range(24) for d in range(7)) / 168 for sector in MIX}


@dataclass(order=True, slots=True)
class _Scheduled:
    deliver_at: float
    seq: int
    event: dict[str, Any] = field(compare=False)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


class SectorSystems:
    """Simulated sector systems of every unit valid at the simulated time.

    ``events_per_hour`` is the average delivery rate over a week (office hours are busier);
    ``duplicate_rate`` and ``late_rate`` are per-event probabilities.
    """

    def __init__(
        self,
        units: list[Unit],
        start: dt.datetime,
        *,
        seed: int = 1,
        events_per_hour: float = 20_000,
        duplicate_rate: float = 0.01,
        late_rate: float = 0.02,
        run_id: str | None = None,
        projects: bool = True,
    ) -> None:
        self.rng = random.Random(seed)
        self.start = start.astimezone(dt.UTC)
        self.units = sorted((u for u in units if u.level == 2), key=lambda u: u.code)
        self.profiles = {u.code: profile_for(u, self.rng) for u in self.units}
        self.events_per_hour = events_per_hour
        self.duplicate_rate = duplicate_rate
        self.late_rate = late_rate
        self.run_id = run_id or f"s{seed}-{int(self.start.timestamp())}"
        self._heap: list[_Scheduled] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._next_hour = int(self.start.timestamp()) // 3600
        self._by_code = {u.code: u for u in self.units}
        self._issued: dict[str, int] = dict.fromkeys(MIX, 0)  # outgoing documents per sector
        if projects:
            self._seed_projects()

    # -- public --------------------------------------------------------------------------
    def until(self, end: dt.datetime) -> Iterator[dict[str, Any]]:
        """Every event delivered before ``end`` not yet returned, in delivery order."""
        end_ts = end.timestamp()
        while self._next_hour * 3600 < end_ts:
            self._generate_hour(self._next_hour)
            self._next_hour += 1
        while self._heap and self._heap[0].deliver_at < end_ts:
            yield heapq.heappop(self._heap).event

    def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` events (generating as many hours as needed)."""
        out: list[dict[str, Any]] = []
        idle_hours = 0
        while len(out) < count and idle_hours < 24 * 366:  # no unit left valid: stop
            before = len(out)
            horizon = dt.datetime.fromtimestamp((self._next_hour + 1) * 3600, dt.UTC)
            out.extend(itertools.islice(self.until(horizon), count - len(out)))
            idle_hours = 0 if len(out) > before else idle_hours + 1
        return out

    # -- generation ----------------------------------------------------------------------
    def _valid_units(self, hour: int) -> list[Unit]:
        day = local_date(dt.datetime.fromtimestamp(hour * 3600, dt.UTC))
        return [u for u in self.units if u.valid_on(day)]

    def _generate_hour(self, hour: int) -> None:
        units = self._valid_units(hour)
        if not units:
            return
        local = dt.datetime.fromtimestamp(hour * 3600, VN)
        total_weight = sum(self.profiles[u.code].weight for u in units)
        for unit in units:
            profile = self.profiles[unit.code]
            share = profile.weight / total_weight
            for sector, kinds in MIX.items():
                level = activity(sector, local.hour, local.weekday()) / _WEEK_ACTIVITY[sector]
                for kind, freq in kinds.items():
                    lam = self.events_per_hour * share * level * freq / _MIX_TOTAL
                    for _ in range(_poisson(self.rng, lam)):
                        at = hour * 3600 + self.rng.random() * 3600
                        self._emit_kind(sector, kind, unit.code, profile, at)

    def _emit_kind(self, sector: str, kind: str, unit: str, p: UnitProfile, at: float) -> None:
        if kind == "dossier":
            self._dossier(sector, unit, p, at)
            return
        if kind == "outgoing":
            self._outgoing(sector, unit, p, at)
            return
        entity, verb, data = self._usage(kind, unit, p)
        self._schedule(sector, entity, verb, unit, at, data)

    def _outgoing(self, sector: str, unit: str, p: UnitProfile, at: float) -> None:
        r = self.rng
        agency = r.random() < p.signed
        data = {
            "document_id": self._ref("VBDI"),
            "agency_signed": agency,
            "personal_signed": agency and r.random() < 0.85,
        }
        self._schedule(sector, "document", "outgoing_issued", unit, at, data)
        self._issued[sector] += 1
        if self._issued[sector] % 25 == 0:  # one in 25 issued by mistake, revoked within days
            revoked = {"document_id": data["document_id"]}
            self._schedule(sector, "document", "revoked", unit, at + r.uniform(0.1, 3) * 86400, revoked)

    def _usage(self, kind: str, unit: str, p: UnitProfile) -> tuple[str, str, dict[str, Any]]:
        """(entity, verb, data) of one stateless event of a kind of activity."""
        r = self.rng
        digital = r.random() < p.digital
        channel = r.choice(("online", "app")) if digital else r.choice(("counter", "counter", "phone", "post"))
        payment = r.choice(("card", "qr", "app", "transfer")) if r.random() < p.cashless else "cash"
        route, site = f"R{unit}-{r.randint(1, 6):02d}", f"S{unit}-{r.randint(1, 3)}"
        if kind == "incoming":
            on_system = r.random() < p.on_system
            electronic = on_system or r.random() < 0.3
            data = {
                "document_id": self._ref("VBD"),
                "received_electronically": electronic,
                "processed_on_system": on_system,
            }
            return "document", "incoming_registered", data
        if kind == "checkin":
            chip = r.random() < p.digital
            method = r.choice(("chip_id", "vneid")) if chip else r.choice(("insurance_card", "paper"))
            return (
                "visit",
                "checked_in",
                {"insured": r.random() < 0.9, "id_method": method, "care_type": r.choice(CARE_TYPES)},
            )
        if kind == "departure":
            delay = r.randint(301, 1800) if r.random() > p.on_time else r.randint(-60, 300)
            return "vehicle", "departed", {"route_id": route, "delay_seconds": delay}
        simple: dict[str, tuple[str, str, dict[str, Any]]] = {
            "enrolment": ("enrolment", "applied", {"channel": channel, "level": r.choice(SCHOOL_LEVELS)}),
            "elearning": ("elearning", "session_completed", {"minutes": round(r.uniform(5, 90), 1)}),
            "fee": ("fee", "paid", {"method": payment}),
            "appointment": ("appointment", "booked", {"channel": channel}),
            "closed": ("visit", "closed", {"emr": r.random() < p.digital, "care_type": r.choice(CARE_TYPES)}),
            "telemedicine": ("telemedicine", "consulted", {"minutes": round(r.uniform(5, 40), 1)}),
            "fare": ("fare", "tapped", {"route_id": route, "payment": payment}),
            "parking": ("parking", "session_closed", {"minutes": round(r.uniform(10, 300), 1), "payment": payment}),
            "ticket": (
                "ticket",
                "sold",
                {"site_id": site, "channel": channel, "quantity": r.choice(TICKET_QUANTITIES)},
            ),
            "entry": ("entry", "scanned", {"site_id": site, "count": r.choice((1, 1, 2, 3))}),
            "library": (
                "library",
                "loan_recorded",
                {"format": "electronic" if r.random() < p.digital * 0.5 else "physical"},
            ),
        }
        return simple[kind]

    def _dossier(self, sector: str, unit: str, p: UnitProfile, at: float) -> None:
        r = self.rng
        did = self._ref(f"H56-{unit}")
        days = r.choice((3, 5, 7, 10, 15))
        due = at + days * 86400
        fee = r.random() < 0.6
        online = r.random() < p.digital
        self._schedule(
            sector,
            "dossier",
            "received",
            unit,
            at,
            {
                "dossier_id": did,
                "procedure_code": f"1.{r.randint(1000, 9999)}",
                "channel": "online" if online else r.choice(("counter", "counter", "post")),
                "due_at": _iso(due),
                "fee_required": fee,
                "digitised": r.random() < p.digital + 0.05,
                "reused_data": r.random() < p.digital * 0.4,
            },
        )
        t, paused = self._supplements(sector, unit, did, p, at)
        on_time = r.random() < p.on_time
        fraction = r.uniform(0.3, 0.98) if on_time else r.uniform(1.05, 1.8)
        resolved = max(t + 600, at + paused + days * 86400 * fraction)
        if r.random() < 0.03:  # withdrawn by the applicant, or processing stopped
            reason = "withdrawn" if r.random() < 0.7 else "stopped"
            left = t + (resolved - t) * r.uniform(0.1, 0.9)
            self._schedule(sector, "dossier", "withdrawn", unit, left, {"dossier_id": did, "reason": reason})
            return
        self._schedule(
            sector, "dossier", "resolved", unit, resolved, {"dossier_id": did, "e_result": r.random() < p.digital}
        )
        if fee:
            paid_at = at + r.uniform(0.01, 0.5) * 86400
            self._schedule(
                sector, "dossier", "paid", unit, paid_at, {"dossier_id": did, "online": r.random() < p.digital}
            )
        if r.random() < 0.5:
            satisfied = r.random() < (0.95 if on_time else 0.6)
            self._schedule(
                sector,
                "dossier",
                "rated",
                unit,
                resolved + r.uniform(600, 86400),
                {"dossier_id": did, "satisfied": satisfied},
            )

    def _supplements(self, sector: str, unit: str, did: str, p: UnitProfile, at: float) -> tuple[float, float]:
        """Supplement requests and resumptions of one dossier: (time of the last, time paused)."""
        r = self.rng
        t = at
        supplements = 0
        if r.random() < 0.15:
            supplements = 2 if r.random() < (0.5 if p.on_time < 0.5 else 0.1) else 1
        paused = 0.0
        for _ in range(supplements):
            t += r.uniform(0.2, 1.5) * 86400
            self._schedule(sector, "dossier", "supplement_requested", unit, t, {"dossier_id": did})
            wait = r.uniform(0.5, 3) * 86400
            t += wait
            paused += wait
            self._schedule(sector, "dossier", "supplement_resumed", unit, t, {"dossier_id": did})
        return t, paused

    def _seed_projects(self) -> None:
        """The 2020 snapshot of the founding article: 13 completed, 10 in progress, 2 in
        appraisal, 2 in design, 13 proposals; progress reported weekly for 8 weeks."""
        r = self.rng
        counts = {"completed": 13, "in_progress": 10, "appraisal": 2, "design": 2, "proposal": 13}
        sectors = list(MIX)
        at = self.start.timestamp() + 60
        for n, (stage, count) in enumerate((s, counts[s]) for s in PROJECT_STAGES[::-1]):
            for i in range(count):
                unit = self.units[(n * 7 + i * 3) % len(self.units)].code
                if not self._by_code[unit].valid_on(self.start.date()):
                    unit = "380"
                sector = sectors[(n + i) % len(sectors)]
                pid = f"DA-{self.run_id}-{stage[:3]}-{i + 1:02d}"
                planned = (self.start + dt.timedelta(days=r.randint(-30, 400))).date()
                self._schedule(
                    sector,
                    "project",
                    "stage_changed",
                    unit,
                    at + i,
                    {
                        "project_id": pid,
                        "stage": stage,
                        "title": f"E-government project {stage} {i + 1}",
                        "planned_completion": planned.isoformat(),
                    },
                )
                if stage == "in_progress":
                    behind = self.profiles[unit].on_time < 0.6 if unit in self.profiles else False
                    for week in range(1, 9):
                        plan = min(100.0, 20 + week * 8.0)
                        actual = plan - (r.uniform(8, 20) if behind else r.uniform(-5, 3))
                        self._schedule(
                            sector,
                            "project",
                            "progress_reported",
                            unit,
                            at + week * 7 * 86400,
                            {
                                "project_id": pid,
                                "percent_complete": round(max(0.0, min(100.0, actual)), 1),
                                "planned_percent": plan,
                            },
                        )

    # -- delivery ------------------------------------------------------------------------
    def _ref(self, prefix: str) -> str:
        return f"{prefix}-{self.run_id}-{next(self._ids)}"

    def _schedule(self, sector: str, entity: str, verb: str, unit: str, at: float, data: dict[str, Any]) -> None:
        r = self.rng
        event = {
            "specversion": "1.0",
            "id": f"{self.run_id}-{next(self._ids)}",
            "source": f"/thanhhoa/{sector}/{entity}-system/{unit}",
            "type": f"{PREFIX}.{sector}.{entity}.{verb}",
            "time": _iso(at),
            "unit": unit,
            "data": data,
        }
        deliver = at
        if r.random() < self.late_rate:
            deliver += r.uniform(3600, 3 * 86400)
        self._push(deliver, event)
        if r.random() < self.duplicate_rate:
            self._push(deliver + r.uniform(1, 600), event)

    def _push(self, deliver_at: float, event: dict[str, Any]) -> None:
        heapq.heappush(self._heap, _Scheduled(deliver_at, next(self._seq), event))


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(round(ts, 3), VN).isoformat(timespec="milliseconds")
