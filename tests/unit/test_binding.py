"""CloudEvents HTTP binding: content modes and body parsing (services/ingest/binding.py)."""

from urllib.parse import quote

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest import binding
from services.ingest.binding import Mode
from services.runtime.problems import Malformed, PayloadTooLarge, ServiceError, UnsupportedMediaType

CE = {"ce-specversion": "1.0", "ce-id": "1"}


@pytest.mark.parametrize(
    ("content_type", "mode"),
    [
        ("application/cloudevents+json", Mode.STRUCTURED),
        ("application/cloudevents+json; charset=utf-8", Mode.STRUCTURED),
        ("Application/CloudEvents+JSON ;charset=UTF-8", Mode.STRUCTURED),
        ("application/cloudevents-batch+json", Mode.BATCH),
        ("APPLICATION/CLOUDEVENTS-BATCH+JSON; charset=utf-8", Mode.BATCH),
    ],
)
def test_structured_and_batch_are_recognised_by_media_type(content_type, mode):
    assert binding.classify(content_type, {}) is mode
    assert binding.classify(content_type, CE) is mode  # the content type decides, not stray ce- headers


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON", None, ""]
)
def test_binary_mode_needs_ce_specversion_and_json_or_no_content_type(content_type):
    assert binding.classify(content_type, CE) is Mode.BINARY


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/octet-stream"])
def test_binary_mode_with_non_json_data_is_415(content_type):
    with pytest.raises(UnsupportedMediaType) as exc:
        binding.classify(content_type, CE)
    assert exc.value.status == 415


def test_plain_json_without_ce_headers_is_400():
    with pytest.raises(Malformed) as exc:
        binding.classify("application/json; charset=utf-8", {"ce-id": "1"})
    assert exc.value.status == 400


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "multipart/form-data; boundary=x"])
def test_anything_else_is_415(content_type):
    with pytest.raises(UnsupportedMediaType) as exc:
        binding.classify(content_type, {})
    assert exc.value.status == 415
    assert isinstance(exc.value, ServiceError)


def test_media_type_strips_parameters_and_case():
    assert binding.media_type(" Application/JSON ; charset=utf-8") == "application/json"
    assert binding.media_type(None) == ""


# --- binary mode -------------------------------------------------------------------------------


def test_parse_binary_rebuilds_the_event_and_percent_decodes_headers():
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "abc",
        "ce-source": "%2Fa%20b",
        "ce-type": "vn.gov.thanhhoa.health.visit.closed",
        "ce-time": "2025-05-05T08:00:00%2B07:00",
        "ce-unit": "390",
        "ce-subject": "a+b",
        "content-type": "application/json; charset=utf-8",
        "authorization": "Bearer x",
        "x-ce-fake": "ignored",
    }
    event = binding.parse_binary(headers, b'{"emr": true}')
    assert event == {
        "specversion": "1.0",
        "id": "abc",
        "source": "/a b",
        "type": "vn.gov.thanhhoa.health.visit.closed",
        "time": "2025-05-05T08:00:00+07:00",
        "unit": "390",
        "subject": "a+b",  # '+' is not a space in header percent-encoding
        "datacontenttype": "application/json",
        "data": {"emr": True},
    }


def test_parse_binary_decodes_utf8_percent_sequences():
    event = binding.parse_binary({"ce-source": "%2Fthanh-h%C3%B3a"}, b"")
    assert event["source"] == "/thanh-hóa"


@given(st.text(max_size=30))
def test_percent_encoding_round_trips(value):
    event = binding.parse_binary({"ce-source": quote(value, safe="")}, b"{}")
    assert event["source"] == value


def test_parse_binary_without_body_or_content_type():
    event = binding.parse_binary({"ce-id": "1"}, b"")
    assert event == {"id": "1", "data": None}


def test_parse_binary_with_invalid_json_is_400():
    with pytest.raises(Malformed) as exc:
        binding.parse_binary(CE, b"{nope")
    assert exc.value.status == 400


# --- structured and batch ------------------------------------------------------------------------


def test_parse_structured_returns_the_json_value_whatever_it_is():
    assert binding.parse_structured(b'{"id": "1"}') == {"id": "1"}
    assert binding.parse_structured(b"[1]") == [1]  # validation, not parsing, rejects non-objects


def test_parse_structured_with_invalid_json_is_400():
    with pytest.raises(Malformed) as exc:
        binding.parse_structured(b"")
    assert exc.value.status == 400


def test_parse_batch_returns_the_array():
    events = [{"id": str(i)} for i in range(3)]
    assert binding.parse_batch(orjson.dumps(events), 3) == events
    assert binding.parse_batch(b"[]", 3) == []


@pytest.mark.parametrize("body", [b'{"id": "1"}', b'"x"', b"1", b"null"])
def test_parse_batch_rejects_a_non_array_with_400(body):
    with pytest.raises(Malformed) as exc:
        binding.parse_batch(body, 10)
    assert exc.value.status == 400


def test_parse_batch_rejects_invalid_json_with_400():
    with pytest.raises(Malformed):
        binding.parse_batch(b"[{", 10)


def test_parse_batch_over_the_limit_is_413_with_the_limit():
    with pytest.raises(PayloadTooLarge) as exc:
        binding.parse_batch(orjson.dumps([{}] * 4), 3)
    assert exc.value.status == 413
    assert exc.value.extra == {"max_events": 3}
    assert exc.value.problem()["max_events"] == 3


@given(st.integers(0, 20), st.integers(0, 20))
def test_parse_batch_limit_law(n, limit):
    body = orjson.dumps([{"i": i} for i in range(n)])
    if n <= limit:
        assert len(binding.parse_batch(body, limit)) == n
    else:
        with pytest.raises(PayloadTooLarge):
            binding.parse_batch(body, limit)
