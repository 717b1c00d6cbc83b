"""The KPI catalogue's formulas applied directly to a list of events.

Deliberately naive and independent of the aggregator and the KPI API: no counters, no
buckets, no shared code - it reads event dicts, rebuilds each dossier from its events and
evaluates each formula as written in docs/kpi-catalogue.md. The property test compares the
API with it.
"""

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]
HOURS = (4, 8, 24, 48, 72, 120, 168, 240, 360, 720)


def _t(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def unique(events: Iterable[Event]) -> list[Event]:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in events:
        if (e["source"], e["id"]) not in seen:
            seen.add((e["source"], e["id"]))
            out.append(e)
    return out


@dataclass
class Dossier:
    unit: str = ""
    sector: str = ""
    received: dt.datetime | None = None
    due: dt.datetime | None = None
    channel: str = ""
    fee: bool = False
    digitised: bool = False
    reused: bool = False
    supplements: int = 0
    paused: float = 0.0
    pause_from: dt.datetime | None = None
    resolved: dt.datetime | None = None
    e_result: bool = False
    paid_online: bool = False
    rating: bool | None = None
    withdrawn: bool = False
    events: list[Event] = field(default_factory=list)

    def on_time(self) -> bool:
        assert self.resolved is not None
        if self.due is None:
            return self.supplements <= 1
        return self.supplements <= 1 and self.resolved <= self.due + dt.timedelta(seconds=self.paused)

    def on_time_by_date(self) -> bool:
        assert self.resolved is not None
        if self.due is None:
            return True
        vn = dt.timezone(dt.timedelta(hours=7))
        return (
            self.resolved.astimezone(vn).date() <= (self.due + dt.timedelta(seconds=self.paused)).astimezone(vn).date()
        )

    def overdue(self, now: dt.datetime) -> bool:
        if self.supplements > 1:
            return True
        if self.due is None:
            return False
        waited = self.paused + (max(0.0, (now - self.pause_from).total_seconds()) if self.pause_from else 0)
        return now > self.due + dt.timedelta(seconds=waited)

    def processing_s(self) -> int:
        assert self.resolved is not None and self.received is not None
        return max(0, round((self.resolved - self.received).total_seconds() - self.paused))


def dossiers(events: list[Event]) -> dict[str, Dossier]:
    out: dict[str, Dossier] = {}
    for e in events:
        parts = e["type"].split(".")
        if parts[4] != "dossier":
            continue
        d = out.setdefault(e["data"]["dossier_id"], Dossier(unit=e["unit"], sector=parts[3]))
        at, verb, data = _t(e["time"]), parts[5], e["data"]
        if verb == "received":
            due = data["due_at"]
            d.unit, d.sector, d.received, d.due = e["unit"], parts[3], at, _t(due) if due else None
            d.channel, d.fee = data["channel"], data["fee_required"]
            d.digitised, d.reused = data.get("digitised", False), data.get("reused_data", False)
        elif verb == "supplement_requested":
            d.supplements += 1
            d.pause_from = d.pause_from or at
        elif verb == "supplement_resumed" and d.pause_from is not None:
            d.paused += max(0, round((at - d.pause_from).total_seconds()))  # a wait cannot be negative
            d.pause_from = None
        elif verb == "resolved":
            if d.pause_from is not None:
                d.paused += max(0, round((at - d.pause_from).total_seconds()))
                d.pause_from = None
            d.resolved, d.e_result = at, data["e_result"]
        elif verb == "withdrawn":
            d.withdrawn = True
        elif verb == "paid":
            d.paid_online = d.paid_online or data["online"]
        elif verb == "rated":
            d.rating = data["satisfied"]
    return out


@dataclass
class Scope:
    """Which events count: units (a subtree), a half-open period, optionally one sector."""

    units: set[str]
    start: dt.datetime
    end: dt.datetime
    sector: str | None
    now: dt.datetime

    def takes(self, e: Event) -> bool:
        sector = e["type"].split(".")[3]
        return (
            e["unit"] in self.units
            and self.start <= _t(e["time"]) < self.end
            and (self.sector is None or sector == self.sector)
        )

    def takes_dossier(self, d: Dossier) -> bool:
        return (
            d.received is not None
            and d.unit in self.units
            and self.start <= d.received < self.end
            and (self.sector is None or d.sector == self.sector)
        )


def _ratio(num: float, den: float, scale: float = 100.0) -> float | None:
    return scale * num / den if den else None


def _of(events: list[Event], scope: Scope, entity_verb: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"].endswith("." + entity_verb) and scope.takes(e)]


def _quantile(q: float, seconds: list[int]) -> float | None:
    if not seconds:
        return None
    wanted = q * len(seconds)
    lower_bound, lower_count = 0, 0
    for h in HOURS:
        count = sum(1 for s in seconds if s <= h * 3600)
        if count >= wanted:
            span = count - lower_count
            return lower_bound + (h - lower_bound) * ((wanted - lower_count) / span if span else 0.0)
        lower_bound, lower_count = h, count
    return float(HOURS[-1])


@dataclass
class Document:
    """A document as its events describe it: counted once, from its earliest report."""

    first: Event
    incoming_flags: tuple[bool, bool] = (False, False)  # (received electronically, on system)
    outgoing: Event | None = None  # the latest outgoing issue
    revoked: bool = False


def documents(events: list[Event]) -> list[Document]:
    out: dict[str, Document] = {}
    for e in events:
        if ".document." not in e["type"]:
            continue
        verb, data = e["type"].rsplit(".", 1)[1], e["data"]
        doc = out.setdefault(data["document_id"], Document(first=e))
        if verb == "revoked":
            doc.revoked = True
            continue
        if doc.first["type"].endswith(".revoked") or _t(e["time"]) < _t(doc.first["time"]):
            doc.first = e
        if verb == "incoming_registered":
            electronic, on_system = doc.incoming_flags
            doc.incoming_flags = (
                electronic or data["received_electronically"],
                on_system or data["processed_on_system"],
            )
        elif doc.outgoing is None or _t(e["time"]) >= _t(doc.outgoing["time"]):
            doc.outgoing = e
    return [d for d in out.values() if not d.revoked and not d.first["type"].endswith(".revoked")]


def kpi_value(kpi: str, events: list[Event], scope: Scope) -> float | None:
    ds = [d for d in dossiers(events).values() if scope.takes_dossier(d)]
    resolved = [d for d in ds if d.resolved is not None]
    open_ = [d for d in ds if d.resolved is None and not d.withdrawn]
    withdrawn = [d for d in ds if d.resolved is None and d.withdrawn]
    docs = [d for d in documents(events) if scope.takes(d.first)]
    digital = ("online", "app")
    of: Callable[[str], list[dict[str, Any]]] = lambda ev: _of(events, scope, ev)  # noqa: E731
    if kpi == "dossier_on_time_rate":
        on_time = sum(d.on_time() for d in resolved) + sum(not d.overdue(scope.now) for d in open_)
        return _ratio(on_time, len(ds) - len(withdrawn))
    if kpi == "dossier_on_time_by_date_rate":
        return _ratio(sum(d.on_time_by_date() for d in resolved), len(resolved))
    if kpi == "avg_processing_hours":
        return _ratio(sum(d.processing_s() for d in resolved), len(resolved), 1 / 3600)
    if kpi in ("processing_p50_hours", "processing_p90_hours"):
        return _quantile(0.5 if "p50" in kpi else 0.9, [d.processing_s() for d in resolved])
    if kpi == "online_submission_rate":
        return _ratio(sum(d.channel == "online" for d in ds), len(ds))
    if kpi == "online_payment_rate":
        return _ratio(sum(d.fee and d.paid_online for d in ds), sum(d.fee for d in ds))
    if kpi == "e_result_rate":
        return _ratio(sum(d.e_result for d in resolved), len(resolved))
    if kpi == "digitisation_rate":
        return _ratio(sum(d.digitised for d in ds), len(ds))
    if kpi == "data_reuse_rate":
        return _ratio(sum(d.reused for d in ds), len(ds))
    if kpi == "satisfaction_rate":
        late = sum(not d.on_time() for d in resolved) + sum(d.overdue(scope.now) for d in open_)
        return _ratio(len(ds) - sum(d.rating is False for d in ds) - late, len(ds))
    if kpi == "incoming_electronic_rate":
        incoming = [d for d in docs if d.first["type"].endswith(".incoming_registered")]
        return _ratio(sum(d.incoming_flags[1] for d in incoming), len(incoming))
    if kpi in ("outgoing_agency_signed_rate", "outgoing_personal_signed_rate"):
        outgoing = [d.outgoing for d in docs if d.first["type"].endswith(".outgoing_issued") and d.outgoing]
        key = "agency_signed" if "agency" in kpi else "personal_signed"
        return _ratio(sum(x["data"][key] for x in outgoing), len(outgoing))
    if kpi == "digital_take_up":
        enrol, appts, tickets = of("enrolment.applied"), of("appointment.booked"), of("ticket.sold")
        num = (
            sum(d.channel == "online" for d in ds)
            + sum(x["channel"] in digital for x in enrol)
            + sum(x["channel"] in digital for x in appts)
            + sum(x.get("quantity", 1) for x in tickets if x["channel"] in digital)
        )
        den = len(ds) + len(enrol) + len(appts) + sum(x.get("quantity", 1) for x in tickets)
        return _ratio(num, den)
    if kpi == "online_enrolment_rate":
        enrol = of("enrolment.applied")
        return _ratio(sum(x["channel"] in digital for x in enrol), len(enrol))
    if kpi == "elearning_minutes":
        sessions = of("elearning.session_completed")
        return sum(round(x["minutes"] * 60) for x in sessions) / 60 if sessions else None
    if kpi == "cashless_fee_rate":
        fees = of("fee.paid")
        return _ratio(sum(x["method"] != "cash" for x in fees), len(fees))
    if kpi == "online_booking_rate":
        appts = of("appointment.booked")
        return _ratio(sum(x["channel"] in digital for x in appts), len(appts))
    if kpi == "chip_id_checkin_rate":
        insured = [x for x in of("visit.checked_in") if x["insured"]]
        return _ratio(sum(x["id_method"] in ("chip_id", "vneid") for x in insured), len(insured))
    if kpi == "emr_rate":
        closed = of("visit.closed")
        return _ratio(sum(x["emr"] for x in closed), len(closed))
    if kpi == "telemedicine_per_100k":
        return None  # the reference units carry no population
    if kpi == "ridership":
        taps = of("fare.tapped")
        return float(len(taps)) if taps else None
    if kpi == "on_time_performance":
        deps = of("vehicle.departed")
        return _ratio(sum(0 <= x["delay_seconds"] <= 300 for x in deps), len(deps))
    if kpi == "cashless_fare_rate":
        taps = of("fare.tapped")
        return _ratio(sum(x["payment"] != "cash" for x in taps), len(taps))
    if kpi == "eticket_rate":
        tickets = of("ticket.sold")
        return _ratio(
            sum(x.get("quantity", 1) for x in tickets if x["channel"] in digital),
            sum(x.get("quantity", 1) for x in tickets),
        )
    if kpi == "visits":
        entries = of("entry.scanned")
        return float(sum(x.get("count", 1) for x in entries)) if entries else None
    if kpi == "library_loans":
        loans = of("library.loan_recorded")
        return float(len(loans)) if loans else None
    raise KeyError(kpi)
