"""Health-insurance claim XML (Decision 130/QĐ-BYT, amended by 4750/QĐ-BYT) → visit events.

Accepted bodies: the ``GIAMDINHHS`` envelope (each ``HOSO`` one visit, its tables as base64
in ``FILEHOSO/NOIDUNGFILE``), or one table on its own: the XML1 summary ``TONG_HOP``, or the
Decision 4750 check-in table. Per visit (``MA_LK``):

- ``visit.checked_in`` at the check-in table's ``NGAY_VAO`` when present, else XML1's;
- ``visit.closed`` at XML1's ``NGAY_RA``;
- ``care_type`` from ``MA_LOAI_KCB``; ``insured`` true (these are insurance claims);
- ``id_method`` ``insurance_card``: a claim proves a card number was used, not whether the
  patient showed a chip ID card or VNeID (the HIS looks the card up either way), so the
  chip-ID check-in rate is not computable from claims;
- ``emr`` from the facility mapping (the facilities the province has approved to keep
  electronic medical records, Circular 46/2018): no claim table says it.

Only ``MA_LK``, ``NGAY_VAO``, ``NGAY_RA``, ``MA_LOAI_KCB`` and ``MA_CSKCB``/``MACSKCB`` are read;
names, ID and card numbers, birth dates, addresses and phones are not. The visit key
itself is not published: event ids carry a digest of (facility, ``MA_LK``). Pure.
"""

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from services.connectors import xmlsafe
from services.connectors.common import Event, RecordError, digest, parse_compact
from services.connectors.mappings import Mappings

CARE_TYPES = {"01": "outpatient_exam", "02": "outpatient_treatment", "03": "inpatient", "04": "day_inpatient"}
SUMMARY = "XML1"
# LOAIHOSO of the Decision 4750 check-in table, and the root of a check-in table sent alone.
# No public sample names it; these spellings are accepted (case-insensitive).
CHECKIN_TYPES = frozenset({"CHECKIN", "CHECK_IN", "XML_CHECKIN", "XMLCHECKIN"})


@dataclass(frozen=True, slots=True)
class Visit:
    key: str  # MA_LK: never published
    facility: str
    care_type: str | None
    checked_in_at: dt.datetime
    closed_at: dt.datetime | None


Outcome = Visit | RecordError


def _care_type(code: str) -> str | None:
    if not code:
        return None
    return CARE_TYPES.get(code.zfill(2) if code.isdigit() else code, "other")


def _table(table: Element, facility: str) -> dict[str, str]:
    fields = {name: xmlsafe.value(table, name) for name in ("MA_LK", "NGAY_VAO", "NGAY_RA", "MA_LOAI_KCB", "MA_CSKCB")}
    fields["MA_CSKCB"] = fields["MA_CSKCB"] or facility
    if not fields["MA_LK"]:
        raise RecordError("MA_LK", "is required", "missing")
    if not fields["MA_CSKCB"]:
        raise RecordError("MA_CSKCB", "is required (or MACSKCB in the envelope)", "missing")
    return fields


def _visit(summary: dict[str, str] | None, checkin: dict[str, str] | None) -> Visit:
    main = summary or checkin
    assert main is not None
    if summary and checkin and summary["MA_LK"] != checkin["MA_LK"]:
        raise RecordError("MA_LK", "differs between the XML1 and check-in tables of one HOSO", "inconsistent")
    start_source = checkin or summary
    assert start_source is not None
    checked_in = parse_compact(start_source["NGAY_VAO"], "NGAY_VAO")
    if checked_in is None:
        raise RecordError("NGAY_VAO", "is required", "missing")
    closed = parse_compact(summary["NGAY_RA"], "NGAY_RA") if summary else None
    code = (summary or {}).get("MA_LOAI_KCB") or (checkin or {}).get("MA_LOAI_KCB", "")
    return Visit(main["MA_LK"], main["MA_CSKCB"], _care_type(code), checked_in, closed)


def _hoso(hoso: Element, facility: str, limit: int) -> Visit:
    summary = checkin = None
    for index, file in enumerate(xmlsafe.children(hoso, "FILEHOSO")):
        kind = xmlsafe.value(file, "LOAIHOSO").upper()
        if kind != SUMMARY and kind not in CHECKIN_TYPES:
            continue  # other tables (drugs, services, …) carry nothing a KPI needs
        where = f"FILEHOSO[{index}].NOIDUNGFILE"
        table = xmlsafe.parse(xmlsafe.b64decode(xmlsafe.value(file, "NOIDUNGFILE"), where, limit), where)
        if kind == SUMMARY:
            summary = _table(table, facility)
        else:
            checkin = _table(table, facility)
    if summary is None and checkin is None:
        raise RecordError("HOSO.FILEHOSO", "holds neither an XML1 nor a check-in table", "missing")
    return _visit(summary, checkin)


def parse_body(data: bytes, table_limit: int) -> list[Outcome]:
    """Every visit of a body, one outcome per ``HOSO`` (or one for a single table). Raises
    RecordError when the body as a whole is unusable (not XML, forbidden constructs)."""
    root = xmlsafe.parse(data, "(body)")
    name = xmlsafe.local(root.tag).upper()
    if name == "TONG_HOP":
        return [_outcome(lambda: _visit(_table(root, ""), None))]
    if name in CHECKIN_TYPES:
        return [_outcome(lambda: _visit(None, _table(root, "")))]
    if name != "GIAMDINHHS":
        raise RecordError("(body)", "root must be GIAMDINHHS, TONG_HOP or a check-in table", "unknown_format")
    facility = xmlsafe.value(root, "THONGTINDONVI", "MACSKCB")
    hosos = xmlsafe.children(xmlsafe.path(root, "THONGTINHOSO", "DANHSACHHOSO") or root, "HOSO")
    return [_outcome(functools.partial(_hoso, hoso, facility, table_limit)) for hoso in hosos]


def _outcome(build: Callable[[], Visit]) -> Outcome:
    try:
        return build()
    except RecordError as exc:
        return exc


def visit_ref(visit: Visit) -> str:
    return f"kcb:{digest(visit.facility, visit.key)}"


def derive(visit: Visit, mappings: Mappings) -> list[Event]:
    """The visit's events; RecordError when its facility has no unit."""
    target = mappings.facility(visit.facility)
    if target is None or target.unit_code is None:
        raise RecordError("MA_CSKCB", "no unit is mapped for this facility; load the facility mapping", "unmapped_unit")
    ref = visit_ref(visit)
    source = f"/connectors/claims/{visit.facility if visit.facility.isalnum() else digest(visit.facility)}"
    unit = target.unit_code
    out = [
        Event(
            f"{ref}:checked_in",
            source,
            "health",
            "visit",
            "checked_in",
            visit.checked_in_at,
            unit,
            {"insured": True, "id_method": "insurance_card", "care_type": visit.care_type},
        ),
    ]
    if visit.closed_at is not None:
        data = {"emr": target.flag, "care_type": visit.care_type}
        out.append(Event(f"{ref}:closed", source, "health", "visit", "closed", visit.closed_at, unit, data))
    return out
