"""Decoding Kafka records into events or poison (services/aggregator/domain/decode.py)."""

import datetime as dt

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.migrate import reference_registry
from schemas.envelope import validate_event
from schemas.events import EVENT_SPECS
from schemas.events.dossiers import DossierPaid
from schemas.sectors import Sector
from services.aggregator.domain.decode import Decoded, Decoder, Poison, Record, event_key
from services.ingest.pipeline import kafka_headers
from services.simulator.encode import to_record

REGISTRY = reference_registry()
PAID = "vn.gov.thanhhoa.health.dossier.paid"
DATA = {"dossier_id": "000.00.28.H56-250505-0001", "online": True}


def headers(**over: bytes | None) -> list[tuple[str, bytes]]:
    """ce_* headers as the ingest service writes them; ``name=None`` drops a header."""
    base = {
        "ce_specversion": b"1.0",
        "ce_id": b"evt-1",
        "ce_source": b"/thanhhoa/health/his/bv-1",
        "ce_type": PAID.encode(),
        "ce_time": b"2025-05-05T08:00:00+07:00",
        "ce_unit": b"390",
        "content-type": b"application/json",
    }
    base.update(over)
    return [(k, v) for k, v in base.items() if v is not None]


def record(
    value: bytes | None = orjson.dumps(DATA), hdrs=None, offset: int = 0, topic: str = "events.health"
) -> Record:
    return Record(topic, 3, offset, b"390", value, headers() if hdrs is None else hdrs)


def decode(rec: Record):
    return Decoder(lambda: REGISTRY).decode(rec)


# --- valid records ---------------------------------------------------------------------------


def test_valid_record_decodes_with_hour_unit_and_key():
    out = decode(record())
    assert isinstance(out, Decoded)
    assert out.spec.type == PAID and out.spec.sector is Sector.HEALTH
    assert out.data == DossierPaid(**DATA)
    assert out.unit == "390" and out.id == "evt-1" and out.source == "/thanhhoa/health/his/bv-1"
    assert out.time == dt.datetime(2025, 5, 5, 1, tzinfo=dt.UTC)
    assert out.hour == int(dt.datetime(2025, 5, 5, 1, tzinfo=dt.UTC).timestamp()) // 3600
    assert out.event_key == event_key("/thanhhoa/health/his/bv-1", "evt-1")
    assert len(out.event_key) == 16


def test_hour_floors_to_the_utc_hour():
    out = decode(record(hdrs=headers(ce_time=b"2025-05-04T17:59:59.999+00:00")))
    assert isinstance(out, Decoded)
    assert out.hour * 3600 == int(dt.datetime(2025, 5, 4, 17, tzinfo=dt.UTC).timestamp())


def test_what_the_ingest_service_writes_decodes_to_the_same_event():
    raw = {
        "specversion": "1.0",
        "id": "a-1",
        "source": "/x",
        "type": PAID,
        "time": "2025-05-05T08:00:00+07:00",
        "unit": "38",
        "subject": "s",
        "data": DATA,
    }
    valid = validate_event(raw, Sector.HEALTH)
    assert not isinstance(valid, list)
    out = decode(Record("events.health", 0, 0, b"38", orjson.dumps(valid.envelope.data), kafka_headers(valid)))
    assert isinstance(out, Decoded)
    assert (out.id, out.source, out.unit, out.time, out.data) == ("a-1", "/x", "38", valid.time, valid.data)


def test_what_the_simulator_writes_decodes_too():
    key, value, hdrs = to_record(
        {"id": "s-1", "source": "/sim", "type": PAID, "time": "2025-05-05T01:00:00Z", "unit": "390", "data": DATA}
    )
    out = decode(Record("events.health", 0, 0, key, value, hdrs))
    assert isinstance(out, Decoded) and out.unit == "390" and out.data == DossierPaid(**DATA)


def test_every_catalogue_type_is_known_to_the_decoder():
    # a known type never yields "unknown event type", whatever its data
    for type_, spec in EVENT_SPECS.items():
        hdrs = headers(ce_type=type_.encode(), ce_unit=b"38")
        out = decode(record(value=b"{}", hdrs=hdrs, topic=f"t1.{spec.topic_suffix}"))
        assert isinstance(out, Poison)
        assert "unknown event type" not in out.reason and "invalid data" in out.reason


# --- poison ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ce_id", "ce_source", "ce_type", "ce_time", "ce_unit"])
def test_missing_ce_header_is_poison_naming_it(name):
    out = decode(record(hdrs=headers(**{name: None})))
    assert isinstance(out, Poison)
    assert "missing" in out.reason and name in out.reason


def test_no_headers_at_all_is_poison():
    for hdrs in (None, []):
        out = decode(Record("events.health", 0, 0, None, b"{}", hdrs))
        assert isinstance(out, Poison) and "missing" in out.reason


@pytest.mark.parametrize("version", [None, b"0.3", b"1.1", b""])
def test_wrong_or_missing_specversion_is_poison(version):
    out = decode(record(hdrs=headers(ce_specversion=version)))
    assert isinstance(out, Poison) and "specversion" in out.reason


def test_unknown_type_is_poison():
    out = decode(record(hdrs=headers(ce_type=b"vn.gov.thanhhoa.health.spaceship.launched")))
    assert isinstance(out, Poison) and "unknown event type" in out.reason


@pytest.mark.parametrize("topic", ["events.transport", "t1a2b3c4.events.education", "events.general", "xevents.health"])
def test_an_event_on_another_sectors_topic_is_poison(topic):
    out = decode(record(topic=topic))  # a health dossier event
    assert isinstance(out, Poison) and out.reason == f"type {PAID!r} belongs to sector 'health', not to topic {topic!r}"


def test_an_event_on_its_sectors_topic_under_a_prefix_decodes():
    assert isinstance(decode(record(topic="t1a2b3c4.events.health")), Decoded)


def test_naive_time_is_poison():
    out = decode(record(hdrs=headers(ce_time=b"2025-05-05T08:00:00")))
    assert isinstance(out, Poison) and "time zone" in out.reason


def test_unparseable_time_is_poison():
    out = decode(record(hdrs=headers(ce_time=b"yesterday")))
    assert isinstance(out, Poison)


def test_unknown_unit_is_poison():
    out = decode(record(hdrs=headers(ce_unit=b"99999")))
    assert isinstance(out, Poison) and "unknown administrative unit" in out.reason


@pytest.mark.parametrize(
    ("unit", "last_valid_utc"),
    [(b"390", "2025-06-30T16:59:59+00:00"), (b"405", "2024-12-31T16:59:59+00:00")],
)
def test_unit_outside_its_validity_is_poison_by_local_day(unit, last_valid_utc):
    last = dt.datetime.fromisoformat(last_valid_utc)
    first_invalid = (last + dt.timedelta(seconds=1)).isoformat().encode()
    decoder = Decoder(lambda: REGISTRY)  # one decoder: its per-(unit, day) cache must not leak
    for order in ((last.isoformat().encode(), first_invalid), (first_invalid, last.isoformat().encode())):
        results = [decoder.decode(record(hdrs=headers(ce_unit=unit, ce_time=t))) for t in order]
        by_time = dict(zip(order, results, strict=True))
        assert isinstance(by_time[last.isoformat().encode()], Decoded)
        bad = by_time[first_invalid]
        assert isinstance(bad, Poison) and "did not exist" in bad.reason


def test_no_value_is_poison():
    out = decode(record(value=None))
    assert isinstance(out, Poison) and "no value" in out.reason


@pytest.mark.parametrize("value", [b"{not json", b"", b"\xff\xfe", b"[1,2]", b"null"])
def test_invalid_json_data_is_poison(value):
    out = decode(record(value=value))
    assert isinstance(out, Poison) and "invalid data" in out.reason


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"dossier_id": "x"}, "online"),
        ({"dossier_id": "has space", "online": True}, "dossier_id"),
        ({**DATA, "citizen_name": "Nguyễn Văn A"}, "citizen_name"),
        ({"dossier_id": "x", "online": "maybe"}, "online"),
    ],
)
def test_data_failing_the_model_is_poison_naming_the_field(data, field):
    out = decode(record(value=orjson.dumps(data)))
    assert isinstance(out, Poison)
    assert "invalid data" in out.reason and field in out.reason


@pytest.mark.parametrize("name", ["ce_id", "ce_source", "ce_type", "ce_time", "ce_unit"])
def test_non_utf8_header_is_poison(name):
    out = decode(record(hdrs=headers(**{name: b"\xff\xfe\x80"})))
    assert isinstance(out, Poison)


@pytest.mark.parametrize("time", [b"9999-12-31T23:00:00+00:00", b"0001-01-01T00:00:00+01:00"])
def test_extreme_times_are_poison_not_exceptions(time):
    out = decode(record(hdrs=headers(ce_time=time, ce_unit=b"38")))
    assert isinstance(out, Poison)


# --- event_key ---------------------------------------------------------------------------------


def test_event_key_distinguishes_ambiguous_concatenations():
    assert event_key("a", "bc") != event_key("ab", "c")
    assert event_key("", "abc") != event_key("abc", "")
    assert event_key("/s", "1") == event_key("/s", "1")


@given(st.text(), st.text())
def test_event_key_is_a_function_of_the_pair(source, id_):
    key = event_key(source, id_)
    assert key == event_key(source, id_) and len(key) == 16


# NUL is excluded here: it is rejected (see the test below).
no_nul = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


@settings(max_examples=300)
@given(no_nul, no_nul, no_nul, no_nul)
def test_different_pairs_have_different_keys(s1, i1, s2, i2):
    if (s1, i1) != (s2, i2):
        assert event_key(s1, i1) != event_key(s2, i2)


@pytest.mark.parametrize(("source", "id_"), [("a\x00b", "c"), ("a", "b\x00c")])
def test_nul_in_source_or_id_is_poison_so_dedupe_keys_cannot_collide(source, id_):
    # NUL separates source and id in the dedupe key: ("a\0b", "c") and ("a", "b\0c") would
    # share a key, so both the decoder and the envelope refuse NUL in either.
    assert event_key("a\x00b", "c") == event_key("a", "b\x00c")
    out = decode(record(hdrs=headers(ce_source=source.encode(), ce_id=id_.encode())))
    assert isinstance(out, Poison) and "NUL" in out.reason
    raw = {
        "specversion": "1.0",
        "id": id_,
        "source": source,
        "unit": "390",
        "time": "2025-05-05T09:00:00+07:00",
        "type": "vn.gov.thanhhoa.health.visit.closed",
        "data": {"emr": True},
    }
    errors = validate_event(raw)
    assert isinstance(errors, list) and {e.field for e in errors} & {"id", "source"}


# --- fuzz ------------------------------------------------------------------------------------

header_names = st.sampled_from(
    ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_unit", "content-type", "ce_subject", "x"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=st.none() | st.binary(max_size=64),
    hdrs=st.none() | st.lists(st.tuples(header_names | st.text(max_size=8), st.binary(max_size=24)), max_size=10),
    key=st.none() | st.binary(max_size=8),
)
def test_arbitrary_records_never_raise(value, hdrs, key):
    rec = Record("t", 0, 0, key, value, hdrs)
    out = Decoder(lambda: REGISTRY).decode(rec)
    assert isinstance(out, Decoded | Poison)
    assert out.record is rec
    if isinstance(out, Poison):
        assert out.reason


aware_times = st.datetimes(
    min_value=dt.datetime(1990, 1, 1),
    max_value=dt.datetime(2060, 1, 1),
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=7)), dt.timezone(dt.timedelta(hours=-11))]),
)


@settings(max_examples=300, deadline=None)
@given(
    type_=st.sampled_from(sorted(EVENT_SPECS)),
    unit=st.sampled_from([b"38", b"390", b"405", b"999", b"", b"\xc3"]),
    time=aware_times.map(lambda t: t.isoformat().encode()) | st.binary(max_size=30),
    value=st.sampled_from([orjson.dumps(DATA), b"{}", b"null", b"\x00"]) | st.binary(max_size=40),
    drop=st.sets(st.sampled_from(["ce_id", "ce_source", "ce_specversion"])),
)
def test_well_shaped_but_random_records_never_raise(type_, unit, time, value, drop):
    hdrs = headers(ce_type=type_.encode(), ce_unit=unit, ce_time=time, **{d: None for d in drop})
    out = Decoder(lambda: REGISTRY).decode(record(value=value, hdrs=hdrs))
    assert isinstance(out, Decoded | Poison)
    if isinstance(out, Decoded):
        assert out.unit in REGISTRY and out.spec.type == type_
        assert REGISTRY.check(out.unit, out.time) is None
