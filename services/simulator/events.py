"""The events of one simulated hour: what each kind of activity sends, with follow-ups.

One :class:`HourBatch` per hour draws from a generator seeded with (seed, hour) and numbers
its events with a counter of its own, so the events of an hour - including the follow-ups it
schedules days later (resolutions, payments, ratings, revocations), its late deliveries and
its duplicates - are a pure function of (seed, hour, rate): ids are ``s<seed>-<hour>-<n>``.
A follow-up carries the unit valid at its own time: after 1 July 2025 the commune that took
over the old commune's open work (``services.core.history.heir``).
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.core.calendar import VN
from services.core.units import Unit
from services.simulator.profiles import UnitProfile, seeded

PREFIX = "vn.gov.thanhhoa"
CARE_TYPES = ("outpatient_exam",) * 6 + ("outpatient_treatment", "inpatient", "day_inpatient")
SCHOOL_LEVELS = ("preschool", "primary", "lower_secondary", "upper_secondary")
TICKET_QUANTITIES = (1, 1, 1, 2, 2, 3, 4)
REVOKED_SHARE = 1 / 25  # outgoing documents issued by mistake, revoked within days

Carrier = Callable[[Unit, float], str | None]  # (unit, epoch seconds) → the code carrying its events then


@dataclass(order=True, slots=True)
class Scheduled:
    """An event and when it is delivered; ``order`` = (origin hour, number within it)."""

    deliver_at: float
    order: tuple[int, int]
    event: dict[str, Any] = field(compare=False)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(round(ts, 3), VN).isoformat(timespec="milliseconds")


class HourBatch:
    """The events one hour sends (``scheduled``), drawn from the hour's own generator."""

    def __init__(self, seed: int, hour: int, carrier: Carrier, *, late_rate: float, duplicate_rate: float) -> None:
        self.seed = seed
        self.hour = hour
        self.rng = seeded(seed, "hour", hour)
        self.carrier = carrier
        self.late_rate = late_rate
        self.duplicate_rate = duplicate_rate
        self.scheduled: list[Scheduled] = []
        self._n = 0
        self._k = 0

    # -- ids and delivery -----------------------------------------------------------------
    def _next(self) -> int:
        self._n += 1
        return self._n

    def ref(self, prefix: str) -> str:
        """A business identifier (dossier, document) unique to this hour of this seed."""
        return f"{prefix}-{self.seed}-{self.hour}-{self._next()}"

    def schedule(self, sector: str, entity: str, verb: str, unit: str, at: float, data: dict[str, Any]) -> None:
        r = self.rng
        event = {
            "specversion": "1.0",
            "id": f"s{self.seed}-{self.hour}-{self._next()}",
            "source": f"/thanhhoa/{sector}/{entity}-system/{unit}",
            "type": f"{PREFIX}.{sector}.{entity}.{verb}",
            "time": iso(at),
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
        self._k += 1
        self.scheduled.append(Scheduled(deliver_at, (self.hour, self._k), event))

    # -- kinds of activity ----------------------------------------------------------------
    def emit(self, sector: str, kind: str, unit: Unit, p: UnitProfile, at: float) -> None:
        """One occurrence of a kind of activity of ``unit`` at ``at`` (and its follow-ups)."""
        if kind == "dossier":
            self.dossier(sector, unit, p, at)
        elif kind == "outgoing":
            self.outgoing(sector, unit, p, at)
        else:
            entity, verb, data = self.usage(kind, unit.code, p)
            self.schedule(sector, entity, verb, unit.code, at, data)

    def outgoing(self, sector: str, unit: Unit, p: UnitProfile, at: float) -> None:
        r = self.rng
        agency = r.random() < p.signed
        data = {
            "document_id": self.ref("VBDI"),
            "agency_signed": agency,
            "personal_signed": agency and r.random() < 0.85,
        }
        self.schedule(sector, "document", "outgoing_issued", unit.code, at, data)
        if r.random() < REVOKED_SHARE:
            revoked_at = at + r.uniform(0.1, 3) * 86400
            carrier = self.carrier(unit, revoked_at)
            if carrier is not None:
                revoked = {"document_id": data["document_id"]}
                self.schedule(sector, "document", "revoked", carrier, revoked_at, revoked)

    def usage(self, kind: str, unit: str, p: UnitProfile) -> tuple[str, str, dict[str, Any]]:
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
                "document_id": self.ref("VBD"),
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

    def dossier(self, sector: str, unit: Unit, p: UnitProfile, at: float) -> None:
        """A dossier's life: received → (supplement requested → resumed) → resolved → paid →
        rated, or withdrawn; each step carried by the unit valid at its time."""
        r = self.rng
        did = self.ref("H56")
        days = r.choice((3, 5, 7, 10, 15))
        fee = r.random() < 0.6
        online = r.random() < p.digital
        received = {
            "dossier_id": did,
            "procedure_code": f"1.{r.randint(1000, 9999)}",
            "channel": "online" if online else r.choice(("counter", "counter", "post")),
            "due_at": iso(at + days * 86400),
            "fee_required": fee,
            "digitised": r.random() < p.digital + 0.05,
            "reused_data": r.random() < p.digital * 0.4,
        }
        self.schedule(sector, "dossier", "received", unit.code, at, received)
        t, paused = self._supplements(sector, unit, did, p, at)
        on_time = r.random() < p.on_time
        fraction = r.uniform(0.3, 0.98) if on_time else r.uniform(1.05, 1.8)
        resolved = max(t + 600, at + paused + days * 86400 * fraction)
        if r.random() < 0.03:  # withdrawn by the applicant, or processing stopped
            reason = "withdrawn" if r.random() < 0.7 else "stopped"
            left = t + (resolved - t) * r.uniform(0.1, 0.9)
            self._later(sector, "withdrawn", unit, left, {"dossier_id": did, "reason": reason})
            return
        self._later(sector, "resolved", unit, resolved, {"dossier_id": did, "e_result": r.random() < p.digital})
        if fee:
            paid_at = at + r.uniform(0.01, 0.5) * 86400
            self._later(sector, "paid", unit, paid_at, {"dossier_id": did, "online": r.random() < p.digital})
        if r.random() < 0.5:
            satisfied = r.random() < (0.95 if on_time else 0.6)
            rated_at = resolved + r.uniform(600, 86400)
            self._later(sector, "rated", unit, rated_at, {"dossier_id": did, "satisfied": satisfied})

    def _later(self, sector: str, verb: str, unit: Unit, at: float, data: dict[str, Any]) -> None:
        carrier = self.carrier(unit, at)
        if carrier is not None:
            self.schedule(sector, "dossier", verb, carrier, at, data)

    def _supplements(self, sector: str, unit: Unit, did: str, p: UnitProfile, at: float) -> tuple[float, float]:
        """Supplement requests and resumptions of one dossier: (time of the last, time paused)."""
        r = self.rng
        t = at
        supplements = 0
        if r.random() < 0.15:
            supplements = 2 if r.random() < (0.5 if p.on_time < 0.5 else 0.1) else 1
        paused = 0.0
        for _ in range(supplements):
            t += r.uniform(0.2, 1.5) * 86400
            self._later(sector, "supplement_requested", unit, t, {"dossier_id": did})
            wait = r.uniform(0.5, 3) * 86400
            t += wait
            paused += wait
            self._later(sector, "supplement_resumed", unit, t, {"dossier_id": did})
        return t, paused
