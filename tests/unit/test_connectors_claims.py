"""Health-insurance claim XML → visit events (pure)."""

import datetime as dt

import orjson
import pytest

from schemas.envelope import validate_event
from services.connectors import claims
from services.connectors.common import VN, RecordError
from tests.support.connectors_samples import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    PERSONAL_VALUES,
    checkin,
    fixture,
    giamdinhhs,
    starter_mappings,
    xml1,
)

MAPPINGS = starter_mappings()
LIMIT = 1024 * 1024


def test_sample_envelope_and_table_agree() -> None:
    [from_envelope] = claims.parse_body(fixture("bhyt_qd130_giamdinhhs.sample.xml"), LIMIT)
    [from_table] = claims.parse_body(fixture("bhyt_qd130_xml1_tonghop.sample.xml"), LIMIT)
    assert from_envelope == from_table
    assert isinstance(from_envelope, claims.Visit)
    events = claims.derive(from_envelope, MAPPINGS)
    assert [(e.verb, e.unit, e.time) for e in events] == [
        ("checked_in", "380", dt.datetime(2025, 3, 12, 8, 15, tzinfo=VN)),
        ("closed", "380", dt.datetime(2025, 3, 12, 10, 30, tzinfo=VN)),
    ]
    assert events[0].data == {"insured": True, "id_method": "insurance_card", "care_type": "outpatient_exam"}
    assert events[1].data == {"emr": False, "care_type": "outpatient_exam"}
    for event in events:
        assert not isinstance(validate_event(event.raw()), list)
        text = orjson.dumps(event.raw()).decode()
        assert "38001-2503120042" not in text  # the visit key travels only as a digest
        assert not [v for v in PERSONAL_VALUES if v in text]


@pytest.mark.parametrize(
    ("code", "care"),
    [
        ("01", "outpatient_exam"),
        ("02", "outpatient_treatment"),
        ("03", "inpatient"),
        ("04", "day_inpatient"),
        ("3", "inpatient"),
        ("09", "other"),
        ("", None),
    ],
)
def test_care_type(code: str, care: str | None) -> None:
    [visit] = claims.parse_body(xml1(loai=code), LIMIT)
    assert isinstance(visit, claims.Visit) and visit.care_type == care


def test_checkin_table_gives_the_start() -> None:
    body = giamdinhhs([[("XML1", xml1("V-1", vao="202503120900")), ("CHECKIN", checkin("V-1", "202503120805"))]])
    [visit] = claims.parse_body(body, LIMIT)
    assert isinstance(visit, claims.Visit)
    assert visit.checked_in_at == dt.datetime(2025, 3, 12, 8, 5, tzinfo=VN)
    [alone] = claims.parse_body(checkin("V-1", "202503120805"), LIMIT)
    assert isinstance(alone, claims.Visit) and alone.closed_at is None
    assert [e.verb for e in claims.derive(alone, MAPPINGS)] == ["checked_in"]
    assert claims.visit_ref(alone) == claims.visit_ref(visit)


def test_one_bad_record_does_not_stop_the_others() -> None:
    body = giamdinhhs(
        [
            [("XML1", xml1("V-1"))],
            [("XML1", "not base64 !!!")],
            [("XML1", BILLION_LAUGHS)],
            [("XML1", EXTERNAL_ENTITY)],
            [("XML1", xml1("V-5", vao="2025-03-12"))],
            [("XML2", b"<CHI_TIET_THUOC/>")],
            [("XML1", xml1("V-7"))],
        ]
    )
    outcomes = claims.parse_body(body, LIMIT)
    codes = [o.code if isinstance(o, RecordError) else "ok" for o in outcomes]
    assert codes == ["ok", "invalid_base64", "xml_forbidden", "xml_forbidden", "invalid_date", "missing", "ok"]
    for outcome in outcomes:
        if isinstance(outcome, RecordError):
            assert not [v for v in PERSONAL_VALUES if v in str(outcome)]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (BILLION_LAUGHS, "xml_forbidden"),
        (EXTERNAL_ENTITY, "xml_forbidden"),
        (b"<a><b></a>", "xml_malformed"),
        (b"<PATIENTS/>", "unknown_format"),
    ],
)
def test_unusable_bodies(body: bytes, code: str) -> None:
    with pytest.raises(RecordError) as caught:
        claims.parse_body(body, LIMIT)
    assert caught.value.code == code


def test_table_size_limit_and_unmapped_facility() -> None:
    [outcome] = claims.parse_body(giamdinhhs([[("XML1", xml1() * 50)]]), 1024)
    assert isinstance(outcome, RecordError) and outcome.code == "too_large"
    [visit] = claims.parse_body(xml1(facility="99999"), LIMIT)
    assert isinstance(visit, claims.Visit)
    with pytest.raises(RecordError) as caught:
        claims.derive(visit, MAPPINGS)
    assert caught.value.code == "unmapped_unit"
