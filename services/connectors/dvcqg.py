"""DVCQG dossier sync payloads (the national public-service portal's one-stop sync) → facts.

Reads only the fields a KPI needs; every other field - the applicant's name, ID numbers,
phone, e-mail, address, the dossier's abstract, officers' names - is never read, so it
cannot be copied anywhere. Pure: no I/O.

Field list: ``../docs/connectors.md`` (from Thanh Hóa's one-stop system and OpenCPS, both
building the same payloads for the portal).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from services.connectors.common import RecordError, as_ref, items, parse_compact, text

# TrangThaiHoSo / TrangThai. Dossiers that began on the national portal carry English words.
STATUS_WORDS: dict[str, int] = {
    "receiving": 1,
    "new": 2,
    "denied": 3,
    "processing": 4,
    "waiting": 5,
    "paying": 6,
    "cancelled": 7,
    "canceled": 7,
    "unresolved": 8,
    "releasing": 9,
    "done": 10,
}
NEW, RECEIVED, REFUSED, PROCESSING, SUPPLEMENT, FINANCIAL, WITHDRAWN, STOPPED, FINISHED, RETURNED = range(1, 11)
NOT_RECEIVED = frozenset({NEW, REFUSED})
RESOLVED = frozenset({FINISHED, RETURNED})
CHANNELS = {"1": "counter", "2": "online", "3": "post"}
ONLINE_PAYMENT = frozenset({"1", "2"})  # DuocThanhToanTrucTuyen: 1 national portal, 2 provincial gateway
REUSED = frozenset({"1", "2"})  # DuocTaiSuDung 1/2: an already digitised component was reused


def parse_status(value: str, name: str) -> int:
    """A status code 1-10 or its English word; RecordError otherwise."""
    word = value.strip().lower()
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    if word.isdigit() and 1 <= int(word) <= 10:
        return int(word)
    raise RecordError(name, "is not a known status (1-10 or receiving/new/denied/…/done)", "unknown_status")


@dataclass(frozen=True, slots=True)
class Supplement:
    """One supplement request: asked at ``requested_at``, supplied at ``resumed_at``."""

    requested_at: dt.datetime
    resumed_at: dt.datetime | None
    due_before: dt.datetime | None  # NgayHenTraTruoc: the due time before this request


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one full dossier payload says, with personal fields left unread."""

    dossier_id: str
    procedure_code: str
    field_code: str
    agency: str
    organ_prefix: str
    status: int
    channel: str | None  # None: KenhThucHien absent (HinhThuc is never used for it)
    received_at: dt.datetime | None
    due_at: dt.datetime | None
    finished_at: dt.datetime | None
    returned_at: dt.datetime | None
    fee_required: bool
    paid_online: bool
    digitised: bool
    reused_data: bool
    e_result: bool
    supplements: tuple[Supplement, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One progress step (``CapNhatTienDoHoSoMC`` / the progress URL)."""

    dossier_id: str
    at: dt.datetime
    status: int


def _object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise RecordError("(record)", "must be a JSON object", "type_error")
    return raw


def dossier_id_of(record: dict[str, Any]) -> str:
    number = text(record, "MaHoSo")
    if not number:
        raise RecordError("MaHoSo", "is required", "missing")
    return as_ref(number, "hs")


def _fee_required(record: dict[str, Any]) -> bool:
    for index, fee in enumerate(items(record, "DanhSachLePhi")):
        amount = text(fee, "Gia").replace(",", "")
        if not amount:
            continue
        try:
            value = float(amount)
        except ValueError:
            raise RecordError(f"DanhSachLePhi[{index}].Gia", "is not a number", "invalid_number") from None
        if value > 0:
            return True
    return False


def _files(record: dict[str, Any]) -> tuple[bool, bool]:
    digitised = text(record, "HoSoCoThanhPhanSoHoa") == "1"
    reused = False
    for file in items(record, "TaiLieuNop"):
        if text(file, "IsDeleted").lower() == "true":
            continue
        digitised = digitised or text(file, "DuocSoHoa") == "1"
        reused = reused or text(file, "DuocTaiSuDung") in REUSED or text(file, "DuocLayTuKhoDMQG") == "1"
    return digitised, reused


def _supplements(record: dict[str, Any]) -> tuple[Supplement, ...]:
    out = []
    for index, entry in enumerate(items(record, "DanhSachHoSoBoSung")):
        where = f"DanhSachHoSoBoSung[{index}]"
        requested = parse_compact(text(entry, "NgayBoSung"), f"{where}.NgayBoSung")
        if requested is None:
            raise RecordError(f"{where}.NgayBoSung", "is required for a supplement request", "missing")
        resumed = parse_compact(text(entry, "NgayTiepNhanBoSung"), f"{where}.NgayTiepNhanBoSung")
        before = parse_compact(text(entry, "NgayHenTraTruoc"), f"{where}.NgayHenTraTruoc")
        out.append(Supplement(requested, resumed, before))
    return tuple(sorted(out, key=lambda s: s.requested_at))


def parse_dossier(raw: Any) -> Snapshot:
    """One element of a dossier array; RecordError (naming the field) when unusable."""
    record = _object(raw)
    dossier_id = dossier_id_of(record)
    status = parse_status(text(record, "TrangThaiHoSo"), "TrangThaiHoSo")
    channel_code = text(record, "KenhThucHien")
    if channel_code and channel_code not in CHANNELS:
        raise RecordError("KenhThucHien", "must be 1 (counter), 2 (online) or 3 (post)", "invalid_channel")
    received_at = parse_compact(text(record, "NgayTiepNhan"), "NgayTiepNhan")
    if received_at is None and status not in NOT_RECEIVED:
        raise RecordError("NgayTiepNhan", f"is required once a dossier is received (status {status})", "missing")
    procedure = text(record, "MaTTHC")
    if not procedure:
        raise RecordError("MaTTHC", "is required", "missing")
    digitised, reused = _files(record)
    results = items(record, "DanhSachGiayToKetQua")
    number = text(record, "MaHoSo")
    return Snapshot(
        dossier_id=dossier_id,
        procedure_code=as_ref(procedure, "tthc"),
        field_code=text(record, "MaLinhVuc"),
        agency=text(record, "DonViXuLy"),
        organ_prefix=number.split("-", 1)[0] if "-" in number else "",
        status=status,
        channel=CHANNELS.get(channel_code),
        received_at=received_at,
        due_at=parse_compact(text(record, "NgayHenTra"), "NgayHenTra"),
        finished_at=parse_compact(text(record, "NgayKetThucXuLy"), "NgayKetThucXuLy"),
        returned_at=parse_compact(text(record, "NgayTra"), "NgayTra"),
        fee_required=_fee_required(record),
        paid_online=text(record, "DuocThanhToanTrucTuyen") in ONLINE_PAYMENT,
        digitised=digitised,
        reused_data=reused,
        e_result=any(text(doc, "DuongDanTepTinKetQua") for doc in results),
        supplements=_supplements(record),
    )


def parse_step(raw: Any) -> Step:
    """One element of a progress array; the officer's name and title are never read."""
    record = _object(raw)
    at = parse_compact(text(record, "ThoiDiemXuLy"), "ThoiDiemXuLy")
    if at is None:
        raise RecordError("ThoiDiemXuLy", "is required", "missing")
    return Step(dossier_id_of(record), at, parse_status(text(record, "TrangThai"), "TrangThai"))


def peek_dossier_id(raw: Any) -> str | None:
    """The dossier id of a record, when it has a usable one (to report per record)."""
    try:
        return dossier_id_of(_object(raw))
    except RecordError:
        return None
