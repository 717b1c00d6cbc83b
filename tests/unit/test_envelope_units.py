"""Envelope validation (schemas/envelope.py) and the unit registry (schemas/units.py)."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.migrate import reference_registry
from schemas.envelope import ValidEvent, validate_event
from schemas.events.usage import AppointmentBooked
from schemas.sectors import Sector
from services.core.units import local_date

REGISTRY = reference_registry()

EVENT = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/thanhhoa/health/his/bv-1",
    "type": "vn.gov.thanhhoa.health.appointment.booked",
    "time": "2025-05-05T08:00:00+07:00",
    "unit": "390",
    "data": {"channel": "app"},
}


def with_(**over):
    out = dict(EVENT)
    for k, v in over.items():
        if v is None:
            out.pop(k)
        else:
            out[k] = v
    return out


def fields(result) -> list[str]:
    assert isinstance(result, list), result
    return [e.field for e in result]


# --- validate_event ----------------------------------------------------------------------------


def test_valid_event():
    out = validate_event(EVENT, Sector.HEALTH)
    assert isinstance(out, ValidEvent)
    assert out.id == "evt-1" and out.unit == "390"
    assert out.time == dt.datetime(2025, 5, 5, 1, tzinfo=dt.UTC)
    assert out.data == AppointmentBooked(channel="app")
    assert out.spec.sector is Sector.HEALTH
    assert isinstance(validate_event(EVENT), ValidEvent)  # no sector: any sector's type


def test_data_errors_report_the_dotted_path():
    out = validate_event(with_(data={"channel": "fax"}))
    assert fields(out) == ["data.channel"]
    assert out[0].code == "literal_error"


def test_every_data_error_is_reported():
    out = validate_event(with_(type="vn.gov.thanhhoa.transport.vehicle.departed", data={"delay_seconds": "late"}))
    assert sorted(fields(out)) == ["data.delay_seconds", "data.route_id"]


def test_extra_envelope_attribute_is_rejected():
    out = validate_event(with_(citizenname="Nguyễn Văn A"))
    assert fields(out) == ["citizenname"]
    assert out[0].code == "extra_forbidden"


def test_extra_data_field_is_rejected():
    assert fields(validate_event(with_(data={"channel": "app", "phone": "0912"}))) == ["data.phone"]


@pytest.mark.parametrize("time", ["2025-05-05T08:00:00", "2025-05-05 08:00:00", "not a time"])
def test_naive_or_bad_time_is_rejected(time):
    assert fields(validate_event(with_(time=time))) == ["time"]


def test_missing_attributes_are_each_reported():
    out = validate_event(with_(id=None, source=None, data=None))
    assert sorted(fields(out)) == ["data", "id", "source"]
    assert {e.code for e in out} == {"missing"}


@pytest.mark.parametrize(
    ("unit", "ok"), [("38", True), ("39999", True), ("3", False), ("390a", False), ("123456", False)]
)
def test_unit_code_shape(unit, ok):
    out = validate_event(with_(unit=unit))
    assert isinstance(out, ValidEvent) if ok else fields(out) == ["unit"]


def test_non_object_event_is_rejected():
    for raw in (None, [], "x", 1):
        out = validate_event(raw)
        assert fields(out) == ["(event)"]


def test_data_must_be_an_object():
    assert fields(validate_event(with_(data=[1, 2]))) == ["data"]


def test_unknown_type():
    out = validate_event(with_(type="vn.gov.thanhhoa.health.rocket.launched"))
    assert fields(out) == ["type"] and out[0].code == "unknown_type"


def test_wrong_sector():
    out = validate_event(EVENT, Sector.TRANSPORT)
    assert fields(out) == ["type"] and out[0].code == "wrong_sector"
    assert "health" in out[0].message and "transport" in out[0].message


def test_data_is_checked_only_once_the_envelope_is_valid():
    out = validate_event(with_(unit="x", data={"channel": "fax"}))
    assert fields(out) == ["unit"]


def test_field_error_as_dict():
    err = validate_event(with_(unit="x"))[0]
    assert err.as_dict() == {"field": "unit", "message": err.message, "code": err.code}


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.none() | st.integers() | st.text(max_size=8), max_size=8))
def test_arbitrary_objects_give_a_result_not_an_exception(raw):
    out = validate_event(raw, Sector.HEALTH)
    assert isinstance(out, ValidEvent | list)
    if isinstance(out, list):
        assert out and all(e.field and e.code for e in out)


# --- units -------------------------------------------------------------------------------------


def test_check_unknown_unit():
    assert REGISTRY.check("99999", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) == (
        "unknown_unit",
        "unknown administrative unit '99999'",
    )


def test_check_unit_not_valid_names_the_local_day_and_span():
    code, message = REGISTRY.check("405", dt.datetime(2024, 12, 31, 17, 0, tzinfo=dt.UTC))
    assert code == "unit_not_valid"
    assert "'405'" in message and "2025-01-01" in message and "2024-12-31" in message


@pytest.mark.parametrize(
    ("code", "moment", "valid"),
    [
        ("405", "2024-12-31T16:59:59+00:00", True),
        ("405", "2024-12-31T17:00:00+00:00", False),
        ("405", "2024-12-31T23:59:59+07:00", True),
        ("405", "2025-01-01T06:59:59+07:00", False),
        ("390", "2025-06-30T16:59:59+00:00", True),
        ("390", "2025-06-30T17:00:00+00:00", False),
        ("390", "2025-06-30T12:00:00-05:00", False),  # 2025-07-01 00:00 in Vietnam
        ("38", "2100-01-01T00:00:00+00:00", True),
    ],
)
def test_validity_is_read_on_the_vietnamese_calendar_day(code, moment, valid):
    assert (REGISTRY.check(code, dt.datetime.fromisoformat(moment)) is None) is valid


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        ("2025-05-04T16:59:59+00:00", "2025-05-04"),
        ("2025-05-04T17:00:00+00:00", "2025-05-05"),
        ("2025-05-05T00:00:00+07:00", "2025-05-05"),
        ("2025-05-04T23:59:59+07:00", "2025-05-04"),
        ("2025-05-04T12:00:00-12:00", "2025-05-05"),
        ("2025-12-31T17:00:00+00:00", "2026-01-01"),
    ],
)
def test_local_date_near_midnight(moment, day):
    assert local_date(dt.datetime.fromisoformat(moment)) == dt.date.fromisoformat(day)


@given(
    st.datetimes(
        min_value=dt.datetime(1990, 1, 1),
        max_value=dt.datetime(2090, 1, 1),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=7)), dt.timezone(dt.timedelta(hours=-9, minutes=-30))]
        ),
    )
)
def test_local_date_is_the_date_at_utc_plus_seven(moment):
    assert local_date(moment) == moment.astimezone(dt.timezone(dt.timedelta(hours=7))).date()
