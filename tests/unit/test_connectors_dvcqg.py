"""DVCQG payloads → dossier facts → CloudEvents (pure)."""

import datetime as dt
import itertools
import random

import orjson
import pytest

from schemas.envelope import validate_event
from services.connectors import dvcqg
from services.connectors.common import VN, RecordError
from services.connectors.dossier_state import DossierFacts, derive, home, merge_snapshot, merge_step, unpublished
from tests.support.connectors_samples import (
    PERSONAL_VALUES,
    dossier,
    fixture,
    progress,
    starter_mappings,
    supplement,
)

SOURCE = "/connectors/dvcqg/test"
MAPPINGS = starter_mappings()


def facts_of(*records: dict, steps: tuple[dict, ...] = ()) -> DossierFacts:
    facts: DossierFacts | None = None
    for record in records:
        snap = dvcqg.parse_dossier(record)
        facts = facts or DossierFacts(snap.dossier_id)
        unit, sector = home(snap, MAPPINGS, "")
        merge_snapshot(facts, snap, unit, sector, "counter")
    for step in steps:
        parsed = dvcqg.parse_step(step)
        facts = facts or DossierFacts(parsed.dossier_id)
        merge_step(facts, parsed)
    assert facts is not None
    return facts


def by_verb(events: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for event in events:
        out.setdefault(event.verb, []).append(event)
    return out


def test_sample_dossier_derives_valid_events_without_personal_data() -> None:
    events = derive(facts_of(dossier()), SOURCE)
    verbs = by_verb(events)
    assert set(verbs) == {"received", "resolved", "paid"}
    received = verbs["received"][0]
    assert received.unit == "380" and received.sector == "general"  # HT01 (civil status) → general
    assert received.data["channel"] == "online"  # KenhThucHien 2, whatever HinhThuc says
    assert received.data["due_at"] == "2025-03-14T17:00:00+07:00"
    assert received.data["fee_required"] and received.data["digitised"] and not received.data["reused_data"]
    assert received.time == dt.datetime(2025, 3, 12, 8, 30, 15, tzinfo=VN)
    assert verbs["resolved"][0].data == {"dossier_id": "000.20.30.H56-250312-00007", "e_result": True}
    assert verbs["resolved"][0].time == dt.datetime(2025, 3, 13, 15, 30, tzinfo=VN)
    for event in events:
        assert not isinstance(validate_event(event.raw()), list), event
        text = orjson.dumps(event.raw()).decode()
        assert not [v for v in PERSONAL_VALUES if v in text]


@pytest.mark.parametrize(
    ("word", "code"),
    [
        ("receiving", 1),
        ("new", 2),
        ("denied", 3),
        ("processing", 4),
        ("waiting", 5),
        ("paying", 6),
        ("cancelled", 7),
        ("unresolved", 8),
        ("releasing", 9),
        ("done", 10),
        ("DONE", 10),
        ("7", 7),
    ],
)
def test_status_words_and_codes(word: str, code: int) -> None:
    assert dvcqg.parse_status(word, "TrangThaiHoSo") == code


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"TrangThaiHoSo": "11"}, "TrangThaiHoSo", "unknown_status"),
        ({"TrangThaiHoSo": "finished"}, "TrangThaiHoSo", "unknown_status"),
        ({"NgayTiepNhan": "2025-03-12"}, "NgayTiepNhan", "invalid_date"),
        ({"NgayTiepNhan": "20251312083015"}, "NgayTiepNhan", "invalid_date"),
        ({"NgayTiepNhan": ""}, "NgayTiepNhan", "missing"),
        ({"MaHoSo": ""}, "MaHoSo", "missing"),
        ({"KenhThucHien": "9"}, "KenhThucHien", "invalid_channel"),
        ({"DanhSachLePhi": [{"Gia": "tám nghìn"}]}, "DanhSachLePhi[0].Gia", "invalid_number"),
        ({"DanhSachLePhi": "none"}, "DanhSachLePhi", "type_error"),
        ({"TaiLieuNop": [1, 2]}, "TaiLieuNop", "type_error"),
        ({"DanhSachHoSoBoSung": [supplement("2025/03/12")]}, "DanhSachHoSoBoSung[0].NgayBoSung", "invalid_date"),
        ({"ChuHoSo": None, "TrangThaiHoSo": True}, "TrangThaiHoSo", "type_error"),
    ],
)
def test_bad_fields_are_named_never_quoted(changes: dict, field: str, code: str) -> None:
    record = dossier(**changes)
    with pytest.raises(RecordError) as caught:
        dvcqg.parse_dossier(record)
    assert (caught.value.field, caught.value.code) == (field, code)
    message = str(caught.value)
    assert not [v for v in (*PERSONAL_VALUES, "tám nghìn", "2025-03-12") if v in message]


def test_not_an_object_is_a_record_error() -> None:
    for raw in (1, "x", None, [1]):
        with pytest.raises(RecordError):
            dvcqg.parse_dossier(raw)


def test_channel_from_kenhthuchien_never_hinhthuc() -> None:
    for kenh, channel in (("1", "counter"), ("2", "online"), ("3", "post")):
        for hinh_thuc in ("0", "1"):
            events = derive(facts_of(dossier(KenhThucHien=kenh, HinhThuc=hinh_thuc)), SOURCE)
            assert by_verb(events)["received"][0].data["channel"] == channel
    # OpenCPS payloads carry no KenhThucHien: the configured default, flagged as such
    facts = facts_of(dossier(KenhThucHien=None, HinhThuc="1"))
    assert facts.channel == "counter" and facts.channel_defaulted
    facts = facts_of(dossier(KenhThucHien=None), dossier(KenhThucHien="2"))
    assert facts.channel == "online" and not facts.channel_defaulted


def test_new_and_refused_dossiers_are_not_received() -> None:
    for status in ("1", "3", "receiving", "denied"):
        assert derive(facts_of(dossier(TrangThaiHoSo=status, NgayTiepNhan="")), SOURCE) == []


def test_no_due_date_and_no_fee() -> None:
    events = derive(facts_of(dossier(NgayHenTra="", DanhSachLePhi=[{"Gia": "0"}])), SOURCE)
    received = by_verb(events)["received"][0]
    assert received.data["due_at"] is None and received.data["fee_required"] is False
    assert "paid" not in by_verb(events)


def test_paid_online_only_with_codes_1_and_2() -> None:
    for code, paid in (("1", True), ("2", True), ("3", False), ("", False)):
        events = derive(facts_of(dossier(DuocThanhToanTrucTuyen=code)), SOURCE)
        assert ("paid" in by_verb(events)) is paid


def test_withdrawn_and_stopped() -> None:
    steps = (progress("000.20.30.H56-250312-00007", "20250313090000", "7"),)
    facts = facts_of(dossier(TrangThaiHoSo="cancelled", NgayKetThucXuLy="", NgayTra=""), steps=steps)
    withdrawn = by_verb(derive(facts, SOURCE))["withdrawn"][0]
    assert withdrawn.data["reason"] == "withdrawn" and withdrawn.time == dt.datetime(2025, 3, 13, 9, tzinfo=VN)
    stopped = by_verb(derive(facts_of(dossier(TrangThaiHoSo="8", NgayKetThucXuLy="", NgayTra="")), SOURCE))
    # no time for the stop in the payload: the latest time known of the dossier
    assert stopped["withdrawn"][0].data["reason"] == "stopped"
    assert stopped["withdrawn"][0].time == dt.datetime(2025, 3, 12, 8, 30, 15, tzinfo=VN)
    assert "resolved" not in stopped


def test_supplements_are_numbered_and_due_is_the_original() -> None:
    record = dossier(
        TrangThaiHoSo="10",
        NgayHenTra="20250318170000",  # moved by the supplement
        DanhSachHoSoBoSung=[
            supplement("20250313090000", "20250314090000", "20250314170000", "20250315170000"),
            supplement("20250315090000", "20250316090000", "20250315170000", "20250318170000"),
        ],
    )
    events = by_verb(derive(facts_of(record), SOURCE))
    assert events["received"][0].data["due_at"] == "2025-03-14T17:00:00+07:00"
    assert [e.id.rsplit(":", 1)[-1] for e in events["supplement_requested"]] == ["1", "2"]
    assert [e.time.day for e in events["supplement_resumed"]] == [14, 16]


def test_provisional_supplement_from_status_and_progress() -> None:
    number = "000.20.30.H56-250312-00007"
    record = dossier(TrangThaiHoSo="waiting", NgayKetThucXuLy="", NgayTra="")
    facts = facts_of(record, steps=(progress(number, "20250312150000", "5"),))
    requested = by_verb(derive(facts, SOURCE))["supplement_requested"]
    assert [(e.id, e.time.hour) for e in requested] == [(f"{number}:supplement:1", 15)]
    # the next step ends the pause; the listed request later keeps the same id
    merge_step(facts, dvcqg.parse_step(progress(number, "20250313080000", "4")))
    events = by_verb(derive(facts, SOURCE))
    assert events["supplement_resumed"][0].time == dt.datetime(2025, 3, 13, 8, tzinfo=VN)


def test_progress_before_snapshot_derives_nothing_then_refines() -> None:
    number = "000.20.30.H56-250312-00007"
    steps = tuple(progress(number, at, s) for at, s in (("20250312083015", "2"), ("20250313153000", "9")))
    facts = facts_of(steps=steps)
    assert derive(facts, SOURCE) == []
    snap = dvcqg.parse_dossier(dossier(TrangThaiHoSo="9", NgayKetThucXuLy=""))
    merge_snapshot(facts, snap, "380", "general", "counter")
    resolved = by_verb(derive(facts, SOURCE))["resolved"][0]
    assert resolved.time == dt.datetime(2025, 3, 13, 15, 30, tzinfo=VN)


def _life() -> list[dict]:
    base = {"NgayKetThucXuLy": "", "NgayTra": "", "DanhSachGiayToKetQua": [], "DanhSachHoSoBoSung": []}
    s1 = supplement("20250312140000", "", "20250314170000", "")
    s1_done = supplement("20250312140000", "20250313080000", "20250314170000", "20250315090000")
    stages = [
        {**base, "TrangThaiHoSo": "new", "TaiLieuNop": [], "DanhSachLePhi": [], "NgayHenTra": "20250314170000"},
        {**base, "DanhSachHoSoBoSung": [s1], "TrangThaiHoSo": "waiting", "NgayHenTra": "20250314170000"},
        {**base, "DanhSachHoSoBoSung": [s1_done], "TrangThaiHoSo": "processing", "NgayHenTra": "20250315090000"},
        {
            **base,
            "DanhSachHoSoBoSung": [s1_done],
            "TrangThaiHoSo": "releasing",
            "NgayKetThucXuLy": "20250314100000",
            "NgayHenTra": "20250315090000",
        },
        {
            "DanhSachHoSoBoSung": [s1_done],
            "TrangThaiHoSo": "done",
            "NgayKetThucXuLy": "20250314100000",
            "NgayHenTra": "20250315090000",
        },
    ]
    return [dossier(**stage) for stage in stages]


def _final(events: list) -> dict[str, tuple]:
    """What the aggregator ends with: one state per step; for versioned steps the last one."""
    out: dict[str, tuple] = {}
    for event in events:
        step = event.id.split(":")[1] if event.verb not in ("supplement_requested", "supplement_resumed") else event.id
        out[f"{event.verb}/{step}"] = (event.time, tuple(sorted(event.data.items())))
    return out


def replay(order: list[dict]) -> list:
    """Send snapshots one by one; publish what each derives that was not published yet."""
    facts: DossierFacts | None = None
    published: list = []
    for record in order:
        snap = dvcqg.parse_dossier(record)
        facts = facts or DossierFacts(snap.dossier_id)
        merge_snapshot(facts, snap, "380", "general", "counter")
        fresh = unpublished(facts, derive(facts, SOURCE))
        facts.published += [e.id for e in fresh]
        published += fresh
    return published


def test_life_in_any_order_with_repeats_ends_in_the_same_state() -> None:
    life = _life()
    expected = _final(replay(life))
    assert {k.split("/")[0] for k in expected} >= {
        "received",
        "supplement_requested",
        "supplement_resumed",
        "resolved",
        "paid",
    }
    received = next(v for k, v in expected.items() if k.startswith("received"))
    assert dict(received[1])["due_at"] == "2025-03-14T17:00:00+07:00"
    rng = random.Random(7)
    for order in itertools.islice(itertools.permutations(life), 0, None, 7):
        with_repeats = list(order) + rng.sample(life, 3)
        rng.shuffle(with_repeats)
        got = replay(with_repeats)
        assert _final(got) == expected
        # out of order never publishes a received event poorer than one already published
        received_versions = [e for e in got if e.verb == "received"]
        assert received_versions[-1].data == dict(received[1])
        assert len({e.id for e in got}) == len(got), "an id was published twice"


def test_resend_derives_the_same_ids() -> None:
    first = [e.id for e in derive(facts_of(dossier()), SOURCE)]
    assert first == [e.id for e in derive(facts_of(dossier(), dossier()), SOURCE)]


def test_facts_round_trip_through_json() -> None:
    facts = facts_of(dossier(DanhSachHoSoBoSung=[supplement("20250313090000")]))
    again = DossierFacts.from_json(orjson.loads(orjson.dumps(facts.to_json())))
    assert derive(again, SOURCE) == derive(facts, SOURCE)


def test_home_needs_a_mapped_agency_or_organ() -> None:
    snap = dvcqg.parse_dossier(dossier(DonViXuLy="UBND xã Không Có", MaHoSo="999.99.99.H99-1"))
    with pytest.raises(RecordError) as caught:
        home(snap, MAPPINGS, "")
    assert caught.value.code == "unmapped_unit"
    assert home(snap, MAPPINGS, "000.00.00.H56") == ("38", "general")  # the sender's organ
    snap = dvcqg.parse_dossier(dossier(DonViXuLy="  ubnd   HUYỆN Cẩm Thủy ", MaLinhVuc="GD01"))
    assert home(snap, MAPPINGS, "") == ("390", "education")


def test_envelope_sample_parses() -> None:
    record = orjson.loads(fixture("dvcqg_dongbohosomc_envelope.sample.json"))["data"][0]
    snap = dvcqg.parse_dossier(record)
    assert snap.status == 4 and snap.channel is None and snap.due_at is not None
