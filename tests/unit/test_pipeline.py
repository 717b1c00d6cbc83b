"""From decoded HTTP events to Kafka messages (services/ingest/pipeline.py)."""

import copy
import datetime as dt

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.migrate import reference_registry
from schemas.envelope import FieldError
from schemas.sectors import Sector
from services.aggregator.domain.decode import Decoded, Decoder, Record
from services.ingest.pipeline import Prepared, Rejected, prepare, prepare_one
from services.runtime.auth import Principal

REGISTRY = reference_registry()
EVERYWHERE = Principal(key_id="k1", kind="ingest", label="HIS", sector="health", units=None)
ONLY_390 = Principal(key_id="k2", kind="ingest", label="HIS 390", sector="health", units=frozenset({"390"}))
TOPIC = "smartcity.events.health"

EVENT = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/thanhhoa/health/his/bv-1",
    "type": "vn.gov.thanhhoa.health.appointment.booked",
    "time": "2025-05-05T08:00:00+07:00",
    "unit": "390",
    "data": {"channel": "app"},
}


def raw(**over):
    out = copy.deepcopy(EVENT)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def one(event, principal=EVERYWHERE, sector=Sector.HEALTH):
    return prepare_one(0, event, sector=sector, registry=REGISTRY, principal=principal, topic=TOPIC)


def test_valid_event_is_prepared_with_unit_key_data_value_and_binary_headers():
    out = one(raw())
    assert isinstance(out, Prepared)
    assert out.index == 0 and out.id == "evt-1"
    msg = out.message
    assert msg.topic == TOPIC
    assert msg.key == b"390"
    assert orjson.loads(msg.value) == {"channel": "app"}
    assert msg.headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_source", b"/thanhhoa/health/his/bv-1"),
        ("ce_type", b"vn.gov.thanhhoa.health.appointment.booked"),
        ("ce_time", b"2025-05-05T08:00:00+07:00"),
        ("ce_unit", b"390"),
        ("content-type", b"application/json"),
    ]


def test_optional_attributes_travel_as_headers_and_datacontenttype_does_not():
    out = one(
        raw(
            subject="ticket-9",
            traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            tracestate="k=v",
            dataschema="https://example/schema",
            datacontenttype="application/json",
        )
    )
    assert isinstance(out, Prepared)
    names = [n for n, _ in out.message.headers]
    assert names[-4:] == ["ce_subject", "ce_dataschema", "ce_traceparent", "ce_tracestate"]
    assert dict(out.message.headers)["ce_subject"] == b"ticket-9"
    assert "ce_datacontenttype" not in names
    assert len(names) == len(set(names))


def test_prepared_message_decodes_back_to_the_same_event():
    out = one(raw())
    assert isinstance(out, Prepared)
    m = out.message
    decoded = Decoder(lambda: REGISTRY).decode(Record(m.topic, 0, 0, m.key, m.value, m.headers))
    assert isinstance(decoded, Decoded)
    assert decoded.id == "evt-1" and decoded.unit == "390"
    assert decoded.time == dt.datetime(2025, 5, 5, 1, tzinfo=dt.UTC)
    assert decoded.data.model_dump() == {"channel": "app"}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (raw(data={}), "data.channel"),
        (raw(data={"channel": "fax"}), "data.channel"),
        (raw(data={"channel": "app", "patient": "x"}), "data.patient"),
        (raw(id=None), "id"),
        (raw(time="2025-05-05T08:00:00"), "time"),
        (raw(unit="3a9"), "unit"),
        (raw(specversion="0.3"), "specversion"),
        (raw(partnerid="x"), "partnerid"),
        (raw(type="vn.gov.thanhhoa.health.unknown.thing"), "type"),
    ],
)
def test_invalid_event_is_rejected_422_with_the_field(event, field):
    out = one(event)
    assert isinstance(out, Rejected)
    assert out.status == 422
    assert out.errors and all(isinstance(e, FieldError) for e in out.errors)
    assert field in [e.field for e in out.errors]
    assert out.id == event.get("id")


def test_non_object_is_rejected_without_an_id():
    out = one(["not", "an", "object"])
    assert isinstance(out, Rejected) and out.status == 422 and out.id is None


def test_non_string_id_is_not_echoed():
    out = one(raw(id=5))
    assert isinstance(out, Rejected) and out.id is None


def test_unknown_unit_is_422():
    out = one(raw(unit="99999"))
    assert isinstance(out, Rejected) and out.status == 422
    assert [(e.field, e.code) for e in out.errors] == [("unit", "unknown_unit")]


@pytest.mark.parametrize(
    ("unit", "time", "ok"),
    [
        ("405", "2024-12-31T23:59:59+07:00", True),
        ("405", "2025-01-01T00:00:00+07:00", False),
        ("405", "2024-12-31T17:00:00Z", False),  # already 1 January in Vietnam
        ("390", "2025-06-30T23:59:59+07:00", True),
        ("390", "2025-07-01T00:00:00+07:00", False),
        ("38", "2030-01-01T00:00:00+07:00", True),
    ],
)
def test_unit_validity_is_checked_at_the_event_time(unit, time, ok):
    out = one(raw(unit=unit, time=time))
    if ok:
        assert isinstance(out, Prepared)
    else:
        assert isinstance(out, Rejected) and out.status == 422
        assert [(e.field, e.code) for e in out.errors] == [("unit", "unit_not_valid")]


def test_unit_outside_the_credentials_units_is_403():
    out = one(raw(unit="38"), principal=ONLY_390)
    assert isinstance(out, Rejected) and out.status == 403
    assert [(e.field, e.code) for e in out.errors] == [("unit", "forbidden_unit")]
    assert isinstance(one(raw(unit="390"), principal=ONLY_390), Prepared)


def test_wrong_sector_is_422_wrong_sector():
    out = one(raw(type="vn.gov.thanhhoa.transport.fare.tapped", data={"route_id": "R1", "payment": "cash"}))
    assert isinstance(out, Rejected) and out.status == 422
    assert [(e.field, e.code) for e in out.errors] == [("type", "wrong_sector")]
    # the same event is fine for the transport service
    assert isinstance(
        one(
            raw(type="vn.gov.thanhhoa.transport.fare.tapped", data={"route_id": "R1", "payment": "cash"}),
            sector=Sector.TRANSPORT,
        ),
        Prepared,
    )


def test_shared_families_are_accepted_by_every_sector():
    for sector in Sector:
        event = raw(
            type=f"vn.gov.thanhhoa.{sector.value}.document.outgoing_issued",
            data={"document_id": "123/QD-UBND", "agency_signed": True, "personal_signed": False},
        )
        assert isinstance(one(event, sector=sector), Prepared)


def test_extreme_event_time_is_rejected_not_raised():
    out = one(raw(time="9999-12-31T23:00:00Z"))
    assert isinstance(out, Rejected) and out.status == 422


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ok", "bad_data", "bad_unit", "forbidden"]), max_size=8))
def test_prepare_returns_one_outcome_per_event_in_order(kinds):
    events = {
        "ok": raw(unit="390"),
        "bad_data": raw(data={}),
        "bad_unit": raw(unit="99999"),
        "forbidden": raw(unit="38"),
    }
    outcomes = prepare(
        [events[k] for k in kinds], sector=Sector.HEALTH, registry=REGISTRY, principal=ONLY_390, topic=TOPIC
    )
    assert [o.index for o in outcomes] == list(range(len(kinds)))
    expected = {"ok": None, "bad_data": 422, "bad_unit": 422, "forbidden": 403}
    for kind, out in zip(kinds, outcomes, strict=True):
        if expected[kind] is None:
            assert isinstance(out, Prepared)
        else:
            assert isinstance(out, Rejected) and out.status == expected[kind]
