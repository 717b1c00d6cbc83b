"""The health sector service as a real process, against the real broker and PostgreSQL.

One service process (small body and batch limits, no key cache) serves most tests; the rate
limit test starts a second process with a tiny rate. Every event a test sends carries an id
unique to that test, so what a test reads back from the shared topic is its own.

What is checked: every error class answers RFC 9457 problem details with the right status
and fields; a mixed batch publishes exactly its valid events; binary and structured events
land in Kafka in CloudEvents Kafka binary mode; the official CloudEvents SDK is understood;
the operations endpoints; the per-key rate limit.
"""

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from schemas.topics import sector_topic
from services.runtime.auth import create_key, revoke_key
from tests.support.kafka import new_prefix, provision
from tests.support.procs import ServiceProcess, service_env
from tests.support.servers import Servers, fresh_database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BODY_BYTES = 32 * 1024
MAX_BATCH_EVENTS = 50
APPOINTMENT = "vn.gov.thanhhoa.health.appointment.booked"
CHECKIN = "vn.gov.thanhhoa.health.visit.checked_in"
MAY = "2025-05-05T09:30:00.250+07:00"


@dataclass
class Stack:
    bootstrap: str
    dsn: str
    prefix: str
    topic: str
    service: ServiceProcess
    key: str  # health, every unit
    key_390: str  # health, unit 390 only
    key_education: str
    key_operator: str

    @property
    def url(self) -> str:
        return f"{self.service.url}/v1/events"


async def _keys(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            "key": (await create_key(conn, kind="ingest", label="his", sector="health")).key,
            "key_390": (await create_key(conn, kind="ingest", label="his-390", sector="health", units=["390"])).key,
            "key_education": (await create_key(conn, kind="ingest", label="school", sector="education")).key,
            "key_operator": (await create_key(conn, kind="operator", label="ops", scope_unit="38")).key,
        }
    finally:
        await conn.close()


def health_service(servers: Servers, dsn: str, prefix: str, workdir: Path, **extra: str) -> ServiceProcess:
    env = service_env(servers.bootstrap, dsn, prefix, LOG_JSON="false", **extra)
    return ServiceProcess("services.health", env, "HEALTH_PORT", workdir)


async def start(service: ServiceProcess) -> ServiceProcess:
    service.start(wait_ready=False)  # spawned from this thread: its PDEATHSIG is tied to it
    await asyncio.to_thread(service.wait_ready)
    return service


@pytest.fixture(scope="module")
async def stack(servers: Servers, workdir: Path) -> AsyncIterator[Stack]:
    dsn = await fresh_database(servers)
    prefix = new_prefix()
    await asyncio.to_thread(provision, servers.bootstrap, prefix)
    keys = await _keys(dsn)
    service = health_service(
        servers,
        dsn,
        prefix,
        workdir,
        HEALTH_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        HEALTH_MAX_BATCH_EVENTS=str(MAX_BATCH_EVENTS),
        HEALTH_KEY_CACHE_TTL_S="0",
    )
    await start(service)
    try:
        yield Stack(servers.bootstrap, dsn, prefix, sector_topic("health", prefix), service, **keys)
    finally:
        service.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as http:
        yield http


def new_ids(count: int, tag: str = "") -> list[str]:
    run = secrets.token_hex(4)
    return [f"{tag}{run}-{i}" for i in range(count)]


def event(
    id_: str,
    *,
    type_: str = APPOINTMENT,
    unit: str = "390",
    time_: str | None = MAY,
    data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": id_,
        "source": "/thanhhoa/health/his/bv-cam-thuy",
        "type": type_,
        "unit": unit,
        "data": {"channel": "online"} if data is None else data,
        **extra,
    }
    if time_ is not None:
        out["time"] = time_
    return out


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def structured(key: str, body: Any) -> dict[str, Any]:
    return {"content": orjson.dumps(body), "headers": {**bearer(key), "content-type": STRUCTURED}}


def batch(key: str, events: list[Any]) -> dict[str, Any]:
    return {"content": orjson.dumps(events), "headers": {**bearer(key), "content-type": BATCH}}


def binary_headers(ev: dict[str, Any]) -> dict[str, str]:
    return {f"ce-{k}": str(v) for k, v in ev.items() if k != "data"} | {"content-type": "application/json"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and body["detail"]
    assert body["instance"] == "/v1/events"
    return body


def fields(problem: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in problem["errors"]}


def read_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Every record of ``topic``, reading each partition up to its end-of-partition event.

    Not ``tests.support.kafka.read_all``: that reads to the end offsets ListOffsets reports,
    and the embedded Tansu answers ListOffsets(latest) with the base offset of the last
    record batch + 1 rather than the last offset + 1, so records of a multi-record batch
    (a batched request publishes those) could be missed. End-of-partition comes from the
    fetch high watermark, which Tansu reports correctly.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "reader-" + secrets.token_hex(3),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        at_end: set[int] = set()
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end: {at_end}"
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(message.partition())
                else:
                    out.append(message)
        return out
    finally:
        consumer.close()


def records_by_id(bootstrap: str, topic: str, ids: set[str]) -> dict[str, list[Any]]:
    """Records of ``topic`` whose ce_id is one of ``ids``, by id (a list: duplicates show)."""
    out: dict[str, list[Any]] = {}
    for message in read_topic(bootstrap, topic):
        headers = dict(message.headers() or [])
        ce_id = headers.get("ce_id", b"").decode()
        if ce_id in ids:
            out.setdefault(ce_id, []).append(message)
    return out


async def read_ids(stack: Stack, ids: set[str]) -> dict[str, list[Any]]:
    return await asyncio.to_thread(records_by_id, stack.bootstrap, stack.topic, ids)


# -- 400, 413, 415: the request itself ------------------------------------------------------


async def test_malformed_json_is_400(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.post(
        stack.url, content=b'{"specversion": "1.0", "id": ', headers={**bearer(stack.key), "content-type": STRUCTURED}
    )
    body = assert_problem(response, 400)
    assert "not valid JSON" in body["detail"]
    response = await client.post(stack.url, content=b"[1, 2", headers={**bearer(stack.key), "content-type": BATCH})
    assert_problem(response, 400)
    # Binary mode: the data is not JSON.
    headers = {**binary_headers(event("x")), **bearer(stack.key), "content-type": "application/json"}
    response = await client.post(stack.url, content=b"{channel: online}", headers=headers)
    assert_problem(response, 400)


async def test_json_without_ce_headers_is_400(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.post(
        stack.url, content=orjson.dumps(event("x")), headers={**bearer(stack.key), "content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert "ce-" in body["detail"]
    assert body["retriable"] is False


async def test_batch_that_is_not_an_array_is_400(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.post(stack.url, **batch(stack.key, event("x")))  # type: ignore[arg-type]
    body = assert_problem(response, 400)
    assert "array" in body["detail"]


async def test_declared_body_over_the_limit_is_413(stack: Stack, client: httpx.AsyncClient) -> None:
    [id_] = new_ids(1)
    big = event(id_, subject="s" * 10, data={"channel": "online"}, padding="x" * (MAX_BODY_BYTES + 1))
    response = await client.post(stack.url, **structured(stack.key, big))
    body = assert_problem(response, 413)
    assert str(MAX_BODY_BYTES) in body["detail"]
    assert not await read_ids(stack, {id_})


async def test_streamed_body_over_the_limit_is_413(stack: Stack, client: httpx.AsyncClient) -> None:
    """Without Content-Length (chunked), the limit holds while the body is read."""
    chunk = b" " * 8192

    async def body() -> AsyncIterator[bytes]:
        yield b"["
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            yield chunk
        yield b"]"

    response = await client.post(stack.url, content=body(), headers={**bearer(stack.key), "content-type": BATCH})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_batch_over_the_event_limit_is_413(stack: Stack, client: httpx.AsyncClient) -> None:
    ids = new_ids(MAX_BATCH_EVENTS + 1)
    events = [event(i) for i in ids]
    request = batch(stack.key, events)
    assert len(request["content"]) < MAX_BODY_BYTES, "the body limit must not be what trips"
    response = await client.post(stack.url, **request)
    body = assert_problem(response, 413)
    assert body["max_events"] == MAX_BATCH_EVENTS
    assert not await read_ids(stack, set(ids)), "nothing of a refused batch is published"
    # The limit itself is accepted.
    response = await client.post(stack.url, **batch(stack.key, events[:MAX_BATCH_EVENTS]))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == MAX_BATCH_EVENTS


@pytest.mark.parametrize(
    ("content_type", "binary"),
    [("text/plain", False), ("application/xml", False), (None, False), ("text/plain", True)],
)
async def test_unsupported_content_type_is_415(
    stack: Stack, client: httpx.AsyncClient, content_type: str | None, binary: bool
) -> None:
    [id_] = new_ids(1)
    ev = event(id_)
    headers = {**(binary_headers(ev) if binary else {}), **bearer(stack.key)}
    headers.pop("content-type", None)
    if content_type is not None:
        headers["content-type"] = content_type
    response = await client.post(stack.url, content=orjson.dumps(ev), headers=headers)
    assert_problem(response, 415)
    assert not await read_ids(stack, {id_})


# -- 422: invalid events, per field -------------------------------------------------------


INVALID = {
    "wrong literal": (dict(data={"channel": "fax"}), {("data.channel", "literal_error")}),
    "missing time": (dict(time_=None), {("time", "missing")}),
    "unknown type": (dict(type_="vn.gov.thanhhoa.health.appointment.teleported"), {("type", "unknown_type")}),
    "other sector": (
        dict(type_="vn.gov.thanhhoa.transport.fare.tapped", data={"route_id": "R1", "payment": "qr"}),
        {("type", "wrong_sector")},
    ),
    "unknown unit": (dict(unit="99999"), {("unit", "unknown_unit")}),
    "unit not valid then": (dict(time_="2025-07-02T09:00:00+07:00"), {("unit", "unit_not_valid")}),
    "extra attribute": (dict(patient="Nguyen Van A"), {("patient", "extra_forbidden")}),
    "extra data field": (dict(data={"channel": "online", "name": "x"}), {("data.name", "extra_forbidden")}),
    "two problems": (dict(time_=None, patient="x"), {("time", "missing"), ("patient", "extra_forbidden")}),
    "bad unit code": (dict(unit="39A"), {("unit", "string_pattern_mismatch")}),
}


@pytest.mark.parametrize("case", list(INVALID))
async def test_invalid_event_is_422_with_its_fields(stack: Stack, client: httpx.AsyncClient, case: str) -> None:
    changes, expected = INVALID[case]
    [id_] = new_ids(1)
    ev = event(id_, **changes)  # type: ignore[arg-type]
    body = assert_problem(await client.post(stack.url, **structured(stack.key, ev)), 422)
    assert fields(body) == expected
    assert id_ in body["detail"]
    assert all(e["message"] for e in body["errors"])
    assert not await read_ids(stack, {id_})


async def test_invalid_binary_event_is_422_with_its_fields(stack: Stack, client: httpx.AsyncClient) -> None:
    [id_] = new_ids(1)
    headers = {**binary_headers(event(id_)), **bearer(stack.key), "ce-patient": "x", "ce-unit": "99999"}
    response = await client.post(stack.url, content=b'{"channel": "online"}', headers=headers)
    body = assert_problem(response, 422)
    assert fields(body) == {("patient", "extra_forbidden")}
    headers = {**binary_headers(event(id_)), **bearer(stack.key), "ce-unit": "99999"}
    response = await client.post(stack.url, content=b'{"channel": "online"}', headers=headers)
    assert fields(assert_problem(response, 422)) == {("unit", "unknown_unit")}
    assert not await read_ids(stack, {id_})


async def test_structured_body_that_is_not_an_object_is_422(stack: Stack, client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post(stack.url, **structured(stack.key, [1, 2])), 422)
    assert fields(body) == {("(event)", "type_error")}


# -- 401, 403: credentials ----------------------------------------------------------------


async def test_missing_or_unknown_credential_is_401(stack: Stack, client: httpx.AsyncClient) -> None:
    [id_] = new_ids(1)
    request = structured(stack.key, event(id_))
    without = {k: v for k, v in request["headers"].items() if k != "authorization"}
    attempts = [
        without,
        {**without, "authorization": "Basic dXNlcjpwYXNz"},
        {**without, "authorization": "Bearer not-a-key"},
        {**without, "authorization": f"Bearer sck_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"},
        # The right key id with a wrong secret.
        {**without, "authorization": "Bearer " + stack.key.rsplit("_", 1)[0] + "_" + secrets.token_urlsafe(32)},
    ]
    for headers in attempts:
        response = await client.post(stack.url, content=request["content"], headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert not await read_ids(stack, {id_})


async def test_revoked_key_is_401(stack: Stack, client: httpx.AsyncClient) -> None:
    conn = await asyncpg.connect(stack.dsn)
    try:
        issued = await create_key(conn, kind="ingest", label="to-revoke", sector="health")
        first, second = new_ids(2)
        assert (await client.post(stack.url, **structured(issued.key, event(first)))).status_code == 202
        assert await revoke_key(conn, issued.principal.key_id)
    finally:
        await conn.close()
    # HEALTH_KEY_CACHE_TTL_S=0: the revocation holds from the next request on.
    response = await client.post(stack.url, **structured(issued.key, event(second)))
    assert_problem(response, 401)
    assert set(await read_ids(stack, {first, second})) == {first}


async def test_key_of_another_sector_is_403(stack: Stack, client: httpx.AsyncClient) -> None:
    [id_] = new_ids(1)
    body = assert_problem(await client.post(stack.url, **structured(stack.key_education, event(id_))), 403)
    assert "education" in body["detail"]
    assert not await read_ids(stack, {id_})


async def test_operator_key_is_403(stack: Stack, client: httpx.AsyncClient) -> None:
    [id_] = new_ids(1)
    body = assert_problem(await client.post(stack.url, **structured(stack.key_operator, event(id_))), 403)
    assert "operator" in body["detail"]
    assert not await read_ids(stack, {id_})


async def test_key_limited_to_a_unit_is_403_for_another_unit(stack: Stack, client: httpx.AsyncClient) -> None:
    allowed, denied, in_batch_ok, in_batch_denied = new_ids(4)
    response = await client.post(stack.url, **structured(stack.key_390, event(denied, unit="392")))
    body = assert_problem(response, 403)
    assert fields(body) == {("unit", "forbidden_unit")}
    response = await client.post(stack.url, **structured(stack.key_390, event(allowed, unit="390")))
    assert response.status_code == 202, response.text
    # In a batch the forbidden event is rejected on its own; the allowed one goes through.
    response = await client.post(
        stack.url, **batch(stack.key_390, [event(in_batch_ok), event(in_batch_denied, unit="392")])
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected"]
    assert [(e["field"], e["code"]) for e in results[1]["errors"]] == [("unit", "forbidden_unit")]
    found = await read_ids(stack, {allowed, denied, in_batch_ok, in_batch_denied})
    assert set(found) == {allowed, in_batch_ok}


# -- batches ------------------------------------------------------------------------------


async def test_mixed_batch_publishes_exactly_its_valid_events(stack: Stack, client: httpx.AsyncClient) -> None:
    ids = new_ids(12)
    events: list[Any] = [
        event(ids[0]),
        event(ids[1], data={"channel": "fax"}),  # rejected: data.channel
        event(ids[2], type_=CHECKIN, data={"insured": True, "id_method": "vneid"}, unit="392"),
        event(ids[3], unit="99999"),  # rejected: unknown unit
        42,  # rejected: not an object, no id
        event(ids[4], time_="2025-05-31T23:59:59+07:00", unit="380"),
        event(ids[5], type_="vn.gov.thanhhoa.culture.entry.scanned", data={"site_id": "S1"}),  # other sector
        event(ids[6], time_=None),  # rejected: time
        event(ids[7], subject="appt-7", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        {**event(ids[8]), "id": 8},  # rejected: id is not a string, reported without an id
        event(ids[9], unit="38"),  # the province itself: valid at any time
        event(ids[10], time_="2025-07-01T00:00:00+07:00"),  # rejected: 390 ended on 2025-06-30
        event(ids[11], time_="2025-06-30T23:59:59+07:00"),  # its last day: accepted
    ]
    expected = {
        0: (ids[0], "accepted", set()),
        1: (ids[1], "rejected", {("data.channel", "literal_error")}),
        2: (ids[2], "accepted", set()),
        3: (ids[3], "rejected", {("unit", "unknown_unit")}),
        4: (None, "rejected", {("(event)", "type_error")}),
        5: (ids[4], "accepted", set()),
        6: (ids[5], "rejected", {("type", "wrong_sector")}),
        7: (ids[6], "rejected", {("time", "missing")}),
        8: (ids[7], "accepted", set()),
        9: (None, "rejected", {("id", "string_type")}),
        10: (ids[9], "accepted", set()),
        11: (ids[10], "rejected", {("unit", "unit_not_valid")}),
        12: (ids[11], "accepted", set()),
    }
    response = await client.post(stack.url, **batch(stack.key, events))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert [r["index"] for r in body["results"]] == list(range(len(events)))
    got = {r["index"]: (r["id"], r["status"], {(e["field"], e["code"]) for e in r["errors"]}) for r in body["results"]}
    assert got == expected
    accepted = {v[0] for v in expected.values() if v[1] == "accepted"}
    assert (body["accepted"], body["rejected"], body["unavailable"]) == (len(accepted), 13 - len(accepted), 0)
    found = await read_ids(stack, set(ids))
    assert set(found) == accepted
    assert all(len(records) == 1 for records in found.values())


async def test_batch_of_only_invalid_events_publishes_nothing(stack: Stack, client: httpx.AsyncClient) -> None:
    ids = new_ids(2)
    response = await client.post(
        stack.url, **batch(stack.key, [event(ids[0], unit="1"), event(ids[1], time_="yesterday")])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (0, 2)
    [unit_errors, time_errors] = [r["errors"] for r in body["results"]]
    assert [(e["field"], e["code"]) for e in unit_errors] == [("unit", "string_pattern_mismatch")]
    assert [e["field"] for e in time_errors] == ["time"]  # the code is pydantic's datetime parse error
    assert not await read_ids(stack, set(ids))


async def test_empty_batch_is_an_empty_answer(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.post(stack.url, **batch(stack.key, []))
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 0, "rejected": 0, "unavailable": 0, "results": []}


# -- what reaches Kafka -------------------------------------------------------------------


def assert_kafka_binary_mode(message: Any, ev: dict[str, Any], *, expected_time: dt.datetime | None = None) -> None:
    """CloudEvents Kafka binding, binary content mode, as the aggregator reads it."""
    assert message.error() is None
    assert message.key() == ev["unit"].encode()
    assert orjson.loads(message.value()) == ev["data"]
    pairs = message.headers()
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate headers: {names}"
    headers = {name: value.decode() for name, value in pairs}
    optional = {f"ce_{k}": ev[k] for k in ("subject", "dataschema", "traceparent", "tracestate") if k in ev}
    time_header = headers.pop("ce_time")
    assert headers == {
        "ce_specversion": "1.0",
        "ce_id": ev["id"],
        "ce_source": ev["source"],
        "ce_type": ev["type"],
        "ce_unit": ev["unit"],
        "content-type": "application/json",
        **optional,
    }
    sent = expected_time or dt.datetime.fromisoformat(ev["time"])
    assert dt.datetime.fromisoformat(time_header) == sent
    assert dt.datetime.fromisoformat(time_header).utcoffset() is not None


async def test_binary_and_structured_events_land_in_kafka_binary_mode(stack: Stack, client: httpx.AsyncClient) -> None:
    ids = new_ids(4)
    plain_binary = event(ids[0], type_=CHECKIN, unit="392", data={"insured": False, "id_method": "paper"})
    binary_subject = event(
        ids[1], subject="visit 42/b", traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    plain_structured = event(ids[2], unit="380", time_="2025-05-06T01:02:03Z")
    structured_subject = event(ids[3], subject="appt-9", dataschema="https://example.org/appointment.json")
    for ev in (plain_binary, binary_subject):
        headers = {**binary_headers(ev), **bearer(stack.key)}
        if "subject" in ev:  # the HTTP binding percent-encodes header values
            headers["ce-subject"] = "visit%2042%2Fb"
        response = await client.post(stack.url, content=orjson.dumps(ev["data"]), headers=headers)
        assert response.status_code == 202, response.text
        assert response.json() == {"id": ev["id"], "status": "accepted"}
    for ev in (plain_structured, structured_subject):
        request = structured(stack.key, ev)
        request["headers"]["content-type"] = f"{STRUCTURED}; charset=utf-8"
        response = await client.post(stack.url, **request)
        assert response.status_code == 202, response.text
        assert response.json() == {"id": ev["id"], "status": "accepted"}
    found = await read_ids(stack, set(ids))
    assert set(found) == set(ids)
    for ev in (plain_binary, binary_subject, plain_structured, structured_subject):
        [message] = found[ev["id"]]
        assert_kafka_binary_mode(message, ev)
    # Same unit, same partition: per-unit order is kept.
    assert found[ids[1]][0].partition() == found[ids[3]][0].partition()


async def test_cloudevents_sdk_client_binary_and_structured(stack: Stack, client: httpx.AsyncClient) -> None:
    """The official SDK (cloudevents 2.x: ``cloudevents.core``) as an independent client."""
    from cloudevents.core.bindings.http import to_binary_event, to_structured_event
    from cloudevents.core.v1.event import CloudEvent

    ids = new_ids(4, tag="sdk-")
    when = dt.datetime(2025, 5, 7, 3, 4, 5, 678000, tzinfo=dt.UTC)
    sent: list[tuple[dict[str, Any], Any]] = []
    for id_, mode in zip(ids, ("binary", "structured", "binary", "structured"), strict=True):
        attributes: dict[str, Any] = {
            "id": id_,
            "source": "/thanhhoa/health/his/bv-ha-trung",
            "type": APPOINTMENT,
            "time": when,
            "unit": "392",
            "datacontenttype": "application/json",
        }
        if id_ in ids[2:]:
            attributes["subject"] = "slot 7 & 8 / 100%"
        data = {"channel": "app"}
        ce = CloudEvent(dict(attributes), data)
        message = to_binary_event(ce) if mode == "binary" else to_structured_event(ce)
        if mode == "binary":
            assert message.headers["ce-unit"] == "392"
            assert "ce-specversion" in message.headers
        else:
            assert message.headers["content-type"] == STRUCTURED
        response = await client.post(stack.url, content=message.body, headers={**message.headers, **bearer(stack.key)})
        assert response.status_code == 202, (mode, response.text)
        sent.append(({**attributes, "specversion": "1.0", "data": data}, response))
    found = await read_ids(stack, set(ids))
    assert set(found) == set(ids)
    for attributes, _ in sent:
        ev = {k: v for k, v in attributes.items() if k not in ("time", "datacontenttype")}
        [record] = found[ev["id"]]
        assert_kafka_binary_mode(record, ev, expected_time=when)


async def test_cloudevents_sdk_v1_compat_api(stack: Stack, client: httpx.AsyncClient) -> None:
    """The SDK's 1.x API, kept in 2.x under ``cloudevents.v1`` (CloudEvent, to_binary,
    to_structured; ``cloudevents.v1.http.to_binary`` is the deprecated alias)."""
    from cloudevents.v1.conversion import to_binary, to_structured
    from cloudevents.v1.http import CloudEvent

    binary_id, structured_id = new_ids(2, tag="sdk1-")
    for id_, convert in ((binary_id, to_binary), (structured_id, to_structured)):
        ce = CloudEvent(
            {
                "id": id_,
                "source": "/thanhhoa/health/his/bv-vinh-loc",
                "type": CHECKIN,
                "time": "2025-05-08T08:00:00+07:00",
                "unit": "393",
                "subject": "visit-1",
                "datacontenttype": "application/json",
            },
            {"insured": True, "id_method": "chip_id"},
        )
        headers, body = convert(ce)
        response = await client.post(stack.url, content=body, headers={**headers, **bearer(stack.key)})
        assert response.status_code == 202, (convert.__name__, response.text)
    found = await read_ids(stack, {binary_id, structured_id})
    assert set(found) == {binary_id, structured_id}
    for id_ in (binary_id, structured_id):
        [record] = found[id_]
        assert_kafka_binary_mode(
            record,
            {
                "specversion": "1.0",
                "id": id_,
                "source": "/thanhhoa/health/his/bv-vinh-loc",
                "type": CHECKIN,
                "time": "2025-05-08T08:00:00+07:00",
                "unit": "393",
                "subject": "visit-1",
                "data": {"insured": True, "id_method": "chip_id"},
            },
        )


# -- operations ---------------------------------------------------------------------------


def accepted_count(metrics_text: str) -> float:
    for family in text_string_to_metric_families(metrics_text):
        if family.name == "ingest_events":
            for sample in family.samples:
                if sample.name == "ingest_events_total" and sample.labels == {
                    "sector": "health",
                    "outcome": "accepted",
                }:
                    return sample.value
    return 0.0


async def test_health_readiness_and_metrics(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{stack.service.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    response = await client.get(f"{stack.service.url}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"kafka": True, "postgres": True, "unit_registry": True}}
    metrics = await client.get(f"{stack.service.url}/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE ingest_events_total counter" in metrics.text
    before = accepted_count(metrics.text)
    ids = new_ids(3)
    response = await client.post(stack.url, **batch(stack.key, [event(i) for i in ids] + [event("bad", unit="1")]))
    assert response.json()["accepted"] == 3
    after = accepted_count((await client.get(f"{stack.service.url}/metrics")).text)
    assert after - before == 3
    assert "http_request_duration_seconds" in metrics.text


async def test_unknown_route_is_a_problem(stack: Stack, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{stack.service.url}/v1/nothing", content=b"{}")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


# -- rate limit (its own process: the limit is per process) ------------------------------


async def test_rate_limit_answers_429_with_retry_after(
    servers: Servers, stack: Stack, workdir: Path, client: httpx.AsyncClient
) -> None:
    service = health_service(
        servers, stack.dsn, stack.prefix, workdir, HEALTH_RATE_LIMIT_PER_S="1", HEALTH_RATE_LIMIT_BURST="2"
    )
    await start(service)
    try:
        url = f"{service.url}/v1/events"
        ids = new_ids(5)
        began = time.monotonic()
        first = await client.post(url, **structured(stack.key, event(ids[0])))
        second = await client.post(url, **structured(stack.key, event(ids[1])))
        third = await client.post(url, **structured(stack.key, event(ids[2])))
        elapsed = time.monotonic() - began
        assert elapsed < 1.0, f"three requests took {elapsed:.2f}s: the bucket refilled meanwhile"
        assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
        body = assert_problem(third, 429)
        assert body["retriable"] is True
        assert int(third.headers["retry-after"]) >= 1
        # The limit is per key: another key still has its burst.
        other = await client.post(url, **structured(stack.key_390, event(ids[3])))
        assert other.status_code == 202, other.text
        # Once the bucket refilled the same key gets through again.
        retried = await eventually(
            lambda: client.post(url, **structured(stack.key, event(ids[4]))),
            lambda r: r.status_code != 429,
            timeout_s=5,
            every_s=0.25,
            what="rate limit bucket refilled",
        )
        assert retried.status_code == 202, retried.text
        assert set(await read_ids(stack, set(ids))) == {ids[0], ids[1], ids[3], ids[4]}
    finally:
        service.stop()
