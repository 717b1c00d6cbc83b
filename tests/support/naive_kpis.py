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
    """Which events count, and how much: units (a subtree), a half-open period, optionally
    one sector. ``pieces`` (code, start, end, weight), when given, replace ``units``: an
    event of ``code`` timed in [start, end) counts ``weight`` times - how a restated history
    is written by hand (a whole predecessor 1, a split one its share)."""

    units: set[str]
    start: dt.datetime
    end: dt.datetime
    sector: str | None
    now: dt.datetime
    pieces: list[tuple[str, dt.datetime, dt.datetime, float]] | None = None
    population: int | None = None  # residents, for per-capita KPIs

    def weight(self, unit: str, at: dt.datetime, sector: str) -> float:
        if not (self.start <= at < self.end and (self.sector is None or sector == self.sector)):
            return 0.0
        if self.pieces is None:
            return 1.0 if unit in self.units else 0.0
        return sum(w for code, a, b, w in self.pieces if code == unit and a <= at < b)

    def takes(self, e: Event) -> float:
        return self.weight(e["unit"], _t(e["time"]), e["type"].split(".")[3])

    def takes_dossier(self, d: Dossier) -> float:
        return 0.0 if d.received is None else self.weight(d.unit, d.received, d.sector)


def _ratio(num: float, den: float, scale: float = 100.0) -> float | None:
    return scale * num / den if den else None


def _of(events: list[Event], scope: Scope, entity_verb: str) -> list[tuple[float, dict[str, Any]]]:
    """(weight, data) of the events of a type the scope takes."""
    out = []
    for e in events:
        if e["type"].endswith("." + entity_verb) and (w := scope.takes(e)):
            out.append((w, e["data"]))
    return out


def _quantile(q: float, seconds: list[tuple[float, int]]) -> float | None:
    total = sum(w for w, _s in seconds)
    if not total:
        return None
    wanted = q * total
    lower_bound, lower_count = 0, 0.0
    for h in HOURS:
        count = sum(w for w, s in seconds if s <= h * 3600)
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


def _sum(items: list[tuple[float, Any]], keep: Callable[[Any], Any] = lambda _x: True) -> float:
    return sum(w * (1 if keep(x) is True else keep(x) or 0) for w, x in items)


def _dossier_kpi(kpi: str, ds: list[tuple[float, Dossier]], now: dt.datetime) -> float | str | None:
    resolved = [(w, d) for w, d in ds if d.resolved is not None]
    open_ = [(w, d) for w, d in ds if d.resolved is None and not d.withdrawn]
    withdrawn = _sum([(w, d) for w, d in ds if d.resolved is None and d.withdrawn])
    received = _sum(ds)
    if kpi == "dossier_on_time_rate":
        on_time = _sum(resolved, lambda d: d.on_time()) + _sum(open_, lambda d: not d.overdue(now))
        return _ratio(on_time, received - withdrawn)
    if kpi == "dossier_on_time_by_date_rate":
        return _ratio(_sum(resolved, lambda d: d.on_time_by_date()), _sum(resolved))
    if kpi == "avg_processing_hours":
        return _ratio(_sum(resolved, lambda d: d.processing_s()), _sum(resolved), 1 / 3600)
    if kpi in ("processing_p50_hours", "processing_p90_hours"):
        return _quantile(0.5 if "p50" in kpi else 0.9, [(w, d.processing_s()) for w, d in resolved])
    if kpi == "online_submission_rate":
        return _ratio(_sum(ds, lambda d: d.channel == "online"), received)
    if kpi == "online_payment_rate":
        return _ratio(_sum(ds, lambda d: d.fee and d.paid_online), _sum(ds, lambda d: d.fee))
    if kpi == "e_result_rate":
        return _ratio(_sum(resolved, lambda d: d.e_result), _sum(resolved))
    if kpi == "digitisation_rate":
        return _ratio(_sum(ds, lambda d: d.digitised), received)
    if kpi == "data_reuse_rate":
        return _ratio(_sum(ds, lambda d: d.reused), received)
    if kpi == "satisfaction_rate":
        late = _sum(resolved, lambda d: not d.on_time()) + _sum(open_, lambda d: d.overdue(now))
        return _ratio(received - _sum(ds, lambda d: d.rating is False) - late, received)
    return "not a dossier KPI"


def kpi_value(kpi: str, events: list[Event], scope: Scope) -> float | None:
    ds = [(w, d) for d in dossiers(events).values() if (w := scope.takes_dossier(d))]
    if kpi == "dossiers_per_10k":
        return _sum(ds) / (scope.population / 10_000) if ds and scope.population else None
    found = _dossier_kpi(kpi, ds, scope.now)
    if found != "not a dossier KPI":
        return found  # type: ignore[return-value]
    docs = [(w, d) for d in documents(events) if (w := scope.takes(d.first))]
    digital = ("online", "app")
    of: Callable[[str], list[tuple[float, dict[str, Any]]]] = lambda ev: _of(events, scope, ev)  # noqa: E731
    if kpi == "incoming_electronic_rate":
        incoming = [(w, d) for w, d in docs if d.first["type"].endswith(".incoming_registered")]
        return _ratio(_sum(incoming, lambda d: d.incoming_flags[1]), _sum(incoming))
    if kpi in ("outgoing_agency_signed_rate", "outgoing_personal_signed_rate"):
        outgoing = [(w, d.outgoing) for w, d in docs if d.first["type"].endswith(".outgoing_issued") and d.outgoing]
        key = "agency_signed" if "agency" in kpi else "personal_signed"
        return _ratio(_sum(outgoing, lambda e: e["data"][key]), _sum(outgoing))
    if kpi == "digital_take_up":
        enrol, appts, tickets = of("enrolment.applied"), of("appointment.booked"), of("ticket.sold")
        num = (
            _sum(ds, lambda d: d.channel == "online")
            + _sum(enrol, lambda x: x["channel"] in digital)
            + _sum(appts, lambda x: x["channel"] in digital)
            + _sum(tickets, lambda x: x.get("quantity", 1) if x["channel"] in digital else 0)
        )
        den = _sum(ds) + _sum(enrol) + _sum(appts) + _sum(tickets, lambda x: x.get("quantity", 1))
        return _ratio(num, den)
    return _usage_kpi(kpi, of, digital, scope.population)


def _usage_kpi(
    kpi: str, of: Callable[[str], list[tuple[float, dict[str, Any]]]], digital: tuple[str, ...], population: int | None
) -> float | None:
    if kpi == "online_enrolment_rate":
        enrol = of("enrolment.applied")
        return _ratio(_sum(enrol, lambda x: x["channel"] in digital), _sum(enrol))
    if kpi == "elearning_minutes":
        sessions = of("elearning.session_completed")
        return _sum(sessions, lambda x: round(x["minutes"] * 60)) / 60 if sessions else None
    if kpi == "cashless_fee_rate":
        fees = of("fee.paid")
        return _ratio(_sum(fees, lambda x: x["method"] != "cash"), _sum(fees))
    if kpi == "online_booking_rate":
        appts = of("appointment.booked")
        return _ratio(_sum(appts, lambda x: x["channel"] in digital), _sum(appts))
    if kpi == "chip_id_checkin_rate":
        insured = [(w, x) for w, x in of("visit.checked_in") if x["insured"]]
        return _ratio(_sum(insured, lambda x: x["id_method"] in ("chip_id", "vneid")), _sum(insured))
    if kpi == "emr_rate":
        closed = of("visit.closed")
        return _ratio(_sum(closed, lambda x: x["emr"]), _sum(closed))
    if kpi == "telemedicine_per_100k":
        consultations = of("telemedicine.consulted")
        return _sum(consultations) / (population / 100_000) if consultations and population else None
    if kpi == "ridership_per_10k":
        taps = of("fare.tapped")
        return _sum(taps) / (population / 10_000) if taps and population else None
    if kpi == "ridership":
        taps = of("fare.tapped")
        return _sum(taps) if taps else None
    if kpi == "on_time_performance":
        deps = of("vehicle.departed")
        return _ratio(_sum(deps, lambda x: 0 <= x["delay_seconds"] <= 300), _sum(deps))
    if kpi == "cashless_fare_rate":
        taps = of("fare.tapped")
        return _ratio(_sum(taps, lambda x: x["payment"] != "cash"), _sum(taps))
    if kpi == "eticket_rate":
        tickets = of("ticket.sold")
        return _ratio(
            _sum(tickets, lambda x: x.get("quantity", 1) if x["channel"] in digital else 0),
            _sum(tickets, lambda x: x.get("quantity", 1)),
        )
    if kpi == "visits":
        entries = of("entry.scanned")
        return _sum(entries, lambda x: x.get("count", 1)) if entries else None
    if kpi == "library_loans":
        loans = of("library.loan_recorded")
        return _sum(loans) if loans else None
    raise KeyError(kpi)
