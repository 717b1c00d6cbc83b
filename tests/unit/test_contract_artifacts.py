"""The committed contract artifacts (schemas/generated) are what the models generate, and
they describe the events, Kafka records and documents the system really produces."""

import datetime as dt
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.migrate import reference_registry, reference_units
from schemas import SCHEMA_MAJOR_VERSION, export
from schemas.envelope import ValidEvent, validate_event
from schemas.events import EVENT_SPECS
from schemas.sectors import INGEST_SECTORS, SECTORS
from schemas.topics import TOPICS, sector_topic
from services.aggregator.adapters.kafka import dead_letter
from services.aggregator.domain.decode import Poison, Record
from services.aggregator.domain.fold import Effects
from services.aggregator.flush import kpi_updates
from services.core.units import UnitRegistry
from services.ingest.pipeline import Prepared, prepare_one
from services.runtime.auth import Principal
from services.simulator.generator import SectorSystems

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "schemas" / "generated"
VN = dt.timezone(dt.timedelta(hours=7))

# The smallest valid ``data`` of every event model, by ``entity.verb`` (required fields only).
MINIMAL_DATA: dict[str, dict[str, Any]] = {
    "dossier.received": {
        "dossier_id": "HS-1",
        "procedure_code": "1.000123",
        "channel": "online",
        "due_at": "2025-05-12T17:00:00+07:00",
        "fee_required": False,
    },
    "dossier.supplement_requested": {"dossier_id": "HS-1"},
    "dossier.supplement_resumed": {"dossier_id": "HS-1"},
    "dossier.resolved": {"dossier_id": "HS-1", "e_result": True},
    "dossier.paid": {"dossier_id": "HS-1", "online": True},
    "dossier.rated": {"dossier_id": "HS-1", "satisfied": False},
    "dossier.withdrawn": {"dossier_id": "HS-1"},
    "document.revoked": {"document_id": "VB-2"},
    "document.incoming_registered": {
        "document_id": "VB-1",
        "received_electronically": True,
        "processed_on_system": True,
    },
    "document.outgoing_issued": {
        "document_id": "VB-2",
        "agency_signed": True,
        "personal_signed": False,
    },
    "project.stage_changed": {"project_id": "DA-1", "stage": "design"},
    "project.progress_reported": {
        "project_id": "DA-1",
        "percent_complete": 40,
        "planned_percent": 52.5,
    },
    "enrolment.applied": {"channel": "online", "level": "primary"},
    "elearning.session_completed": {"minutes": 30},
    "fee.paid": {"method": "qr"},
    "appointment.booked": {"channel": "app"},
    "visit.checked_in": {"insured": True, "id_method": "vneid"},
    "visit.closed": {"emr": True},
    "telemedicine.consulted": {"minutes": 12.5},
    "fare.tapped": {"route_id": "R380-01", "payment": "card"},
    "vehicle.departed": {"route_id": "R380-01", "delay_seconds": -30},
    "parking.session_closed": {"minutes": 45, "payment": "cash"},
    "ticket.sold": {"site_id": "S380-1", "channel": "counter"},
    "entry.scanned": {"site_id": "S380-1"},
    "library.loan_recorded": {"format": "electronic"},
}
OPTIONAL_ATTRIBUTES = {
    "subject": "HS-1",
    "datacontenttype": "application/json",
    "dataschema": "https://smartcity.thanhhoa.gov.vn/schemas/events/x.schema.json",
    "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "tracestate": "vendor=value",
}
TYPES = sorted(EVENT_SPECS)


def minimal_event(type_: str, **attributes: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "/thanhhoa/test/system",
        "type": type_,
        "time": "2025-05-05T09:30:00.123+07:00",
        "unit": "380",
        "data": dict(MINIMAL_DATA[EVENT_SPECS[type_].short_type]),
        **attributes,
    }


def full_event(type_: str) -> dict[str, Any]:
    return minimal_event(type_, **OPTIONAL_ATTRIBUTES)


def validator(schema: dict[str, Any]) -> Any:
    # jsonschema_rs comes with schemathesis (dev extra); the pure-Python jsonschema does not.
    # Imported here so that a missing validator fails these tests, not the freshness test.
    import jsonschema_rs

    return jsonschema_rs.validator_for(schema, validate_formats=True)


def errors(schema: dict[str, Any], instance: Any) -> list[str]:
    return [f"{e.instance_path}: {e.message}" for e in validator(schema).iter_errors(instance)]


@cache
def event_schema(type_: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((GENERATED / "events" / f"{type_}.schema.json").read_text())
    return result


@cache
def asyncapi() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((GENERATED / "asyncapi.json").read_text())
    return result


def message(name: str) -> dict[str, Any]:
    result: dict[str, Any] = asyncapi()["components"]["messages"][name]
    return result


# -- freshness --------------------------------------------------------------------------------


def test_committed_artifacts_equal_a_fresh_generation() -> None:
    stale = export.stale_files()
    assert not stale, (
        "schemas/generated is stale - it no longer matches the models in schemas/. "
        f"Stale: {', '.join(stale)}. Run `make schemas` and commit the result."
    )


def test_openapi_of_every_sector_service_is_generated() -> None:
    for sector in INGEST_SECTORS:
        document = json.loads((GENERATED / "openapi" / f"{sector.value}.json").read_text())
        assert "/v1/events" in document["paths"], sector


# -- event schemas against real and hand-made events -------------------------------------------


def test_every_event_model_has_a_minimal_example() -> None:
    assert {spec.short_type for spec in EVENT_SPECS.values()} == set(MINIMAL_DATA)


@pytest.mark.parametrize("type_", TYPES)
def test_minimal_and_full_events_validate(type_: str) -> None:
    for event in (minimal_event(type_), full_event(type_)):
        assert errors(event_schema(type_), event) == []
        result = validate_event(event, EVENT_SPECS[type_].sector)
        assert isinstance(result, ValidEvent), result
        assert result.spec.type == type_


def simulated_events(per_type: int = 3) -> Iterator[dict[str, Any]]:
    start = dt.datetime(2025, 5, 5, 8, tzinfo=VN)
    systems = SectorSystems(reference_units(), start, seed=3, events_per_hour=100)
    seen: dict[str, int] = {}
    for event in systems.until(start + dt.timedelta(days=14)):
        if seen.get(event["type"], 0) < per_type:
            seen[event["type"]] = seen.get(event["type"], 0) + 1
            yield event


def test_simulated_events_validate_against_their_schema() -> None:
    covered = set()
    for event in simulated_events():
        assert errors(event_schema(event["type"]), event) == [], event
        assert isinstance(validate_event(event), ValidEvent), event
        covered.add(event["type"])
    sent_over_http = {t for t, spec in EVENT_SPECS.items() if spec.sector in INGEST_SECTORS}
    assert covered == sent_over_http, "the simulator no longer emits every event type of the sector services"


@pytest.mark.parametrize("type_", TYPES)
def test_schema_rejects_what_validation_rejects(type_: str) -> None:
    required = event_schema(type_)["properties"]["data"]["required"]
    broken = [
        minimal_event(type_, data={**MINIMAL_DATA[EVENT_SPECS[type_].short_type], "name": "x"}),
        minimal_event(type_, unit="ABC"),
        minimal_event(type_, time="2025-05-05T09:30:00"),
        minimal_event(type_, extension="not in the contract"),
        {k: v for k, v in minimal_event(type_).items() if k != "source"},
    ]
    if required:
        event = minimal_event(type_)
        del event["data"][required[0]]
        broken.append(event)
    for event in broken:
        assert errors(event_schema(type_), event), event
        assert isinstance(validate_event(event), list), event
    other = next(t for t in TYPES if EVENT_SPECS[t].sector is not EVENT_SPECS[type_].sector)
    assert errors(event_schema(type_), minimal_event(other)), "type must be a const"


# -- AsyncAPI ----------------------------------------------------------------------------------


def test_asyncapi_lists_every_event_type_once_and_every_topic() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["version"] == f"{SCHEMA_MAJOR_VERSION}.0.0"
    assert document["defaultContentType"] == "application/json"
    addresses = sorted(channel["address"] for channel in document["channels"].values())
    assert addresses == sorted(topic.base_name for topic in TOPICS)
    listed: list[str] = []
    for channel_id, channel in document["channels"].items():
        for ref in channel.get("messages", {}).values():
            name = ref["$ref"].removeprefix("#/components/messages/")
            if name in EVENT_SPECS:
                assert channel_id == sector_topic(EVENT_SPECS[name].sector), name
            listed.append(name)
    events = [name for name in listed if name in EVENT_SPECS]
    assert sorted(events) == sorted(EVENT_SPECS), "each event type on exactly one channel"
    assert set(document["components"]["messages"]) == {*EVENT_SPECS, "deadLetter", "kpiUpdate"}
    assert {"deadLetter", "kpiUpdate"} <= set(listed)


# Fixed fields of AsyncAPI 3.0.0 objects and Kafka bindings 0.4.0, from the specification's JSON
# Schema (asyncapi/spec-json-schemas: definitions/3.0.0/*.json, bindings/kafka/0.4.0/*.json).
CHANNEL_FIELDS = {
    "address",
    "messages",
    "title",
    "summary",
    "description",
    "servers",
    "parameters",
    "tags",
    "externalDocs",
    "bindings",
}
OPERATION_FIELDS = {
    "action",
    "channel",
    "title",
    "summary",
    "description",
    "security",
    "tags",
    "externalDocs",
    "bindings",
    "traits",
    "messages",
    "reply",
}
MESSAGE_FIELDS = {
    "headers",
    "payload",
    "correlationId",
    "contentType",
    "name",
    "title",
    "summary",
    "description",
    "tags",
    "externalDocs",
    "bindings",
    "examples",
    "traits",
    "deprecated",
}
KAFKA_CHANNEL = {"topic", "partitions", "replicas", "topicConfiguration", "bindingVersion"}
KAFKA_TOPIC_CONFIG = {
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "delete.retention.ms",
    "max.message.bytes",
}
KAFKA_MESSAGE = {
    "key",
    "schemaIdLocation",
    "schemaIdPayloadEncoding",
    "schemaLookupStrategy",
    "bindingVersion",
}
COMPONENT_NAME = re.compile(r"^[\w\d\.\-_]+$")


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_asyncapi_has_the_structure_of_the_3_0_0_specification() -> None:
    document = asyncapi()
    assert set(document) <= {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    }
    assert {"title", "version"} <= set(document["info"])
    for ref in refs(document):
        assert ref.startswith("#/"), ref
        resolve(document, ref)  # every reference resolves (no leftover #/$defs)
    for channel in document["channels"].values():
        assert set(channel) <= CHANNEL_FIELDS
        kafka = channel["bindings"]["kafka"]
        assert set(kafka) <= KAFKA_CHANNEL and set(kafka["topicConfiguration"]) <= KAFKA_TOPIC_CONFIG
        assert kafka["partitions"] >= 1
    for operation in document["operations"].values():
        assert set(operation) <= OPERATION_FIELDS
        assert operation["action"] in ("send", "receive")
        channel_ref = operation["channel"]["$ref"]
        for ref in operation["messages"]:  # a subset of the messages of its channel
            assert ref["$ref"].startswith(channel_ref + "/messages/")
    for name, body in document["components"]["messages"].items():
        assert COMPONENT_NAME.match(name), name
        assert set(body) <= MESSAGE_FIELDS, name
        assert set(body["bindings"]["kafka"]) <= KAFKA_MESSAGE, name
        for schema in (body["payload"], body.get("headers", {}), body["bindings"]["kafka"]["key"]):
            validator(schema)  # a well-formed schema


def test_operations_of_services_and_aggregator() -> None:
    operations = asyncapi()["operations"].values()
    by_channel: dict[str, set[tuple[str, str]]] = {}
    for op in operations:
        channel = resolve(asyncapi(), op["channel"]["$ref"])["address"]
        by_channel.setdefault(channel, set()).add((op["action"], op["tags"][0]["name"]))
    for sector in SECTORS:
        sender = f"{sector.value}-service" if sector in INGEST_SECTORS else "connectors"
        assert by_channel[sector_topic(sector)] == {
            ("send", sender),
            ("receive", "kpi-aggregator"),
        }
    assert by_channel["events.deadletter"] == {("send", "kpi-aggregator")}
    assert by_channel["kpi-updates"] == {("send", "kpi-aggregator")}


# -- Kafka records as the services write them --------------------------------------------------


@cache
def registry() -> UnitRegistry:
    return reference_registry()


def record_of(event: dict[str, Any]) -> tuple[str, Any, dict[str, str]]:
    """(key, value, headers) of the Kafka record the ingestion pipeline writes for an event."""
    spec = EVENT_SPECS[event["type"]]
    principal = Principal(key_id="k", kind="ingest", label="test", sector=spec.sector.value)
    outcome = prepare_one(
        0,
        event,
        sector=spec.sector,
        registry=registry(),
        principal=principal,
        topic=sector_topic(spec.sector),
    )
    assert isinstance(outcome, Prepared), outcome
    msg = outcome.message
    assert msg.key is not None
    return msg.key.decode(), orjson.loads(msg.value), {k: v.decode() for k, v in msg.headers}


@pytest.mark.parametrize("type_", TYPES)
def test_kafka_records_match_their_asyncapi_message(type_: str) -> None:
    described = message(type_)
    headers_schema = described["headers"]
    for event in (minimal_event(type_), full_event(type_)):
        key, value, headers = record_of(event)
        assert errors(described["payload"], value) == []
        assert errors(headers_schema, headers) == []
        assert errors(described["bindings"]["kafka"]["key"], key) == []
    _, _, every = record_of(full_event(type_))
    _, _, fewest = record_of(minimal_event(type_))
    assert set(every) == set(headers_schema["properties"]), "headers written = headers described"
    assert set(fewest) == set(headers_schema["required"]), "headers always written = required"


def test_dead_letter_records_match_their_asyncapi_message() -> None:
    described = message("deadLetter")
    _, value, headers = record_of(minimal_event("vn.gov.thanhhoa.health.visit.closed"))
    record = Record(
        topic="events.health",
        partition=3,
        offset=41,
        key=b"380",
        value=orjson.dumps(value),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )
    letter = dead_letter(Poison(record, "unit '380' (Thanh Hóa) did not exist"), "events.deadletter")
    decoded = {k: v.decode() for k, v in letter.headers}
    assert errors(described["headers"], decoded) == []
    assert letter.key is not None
    assert errors(described["bindings"]["kafka"]["key"], letter.key.decode()) == []


def test_kpi_update_records_match_their_asyncapi_message() -> None:
    described = message("kpiUpdate")
    hour = int(dt.datetime(2025, 5, 5, 2, tzinfo=dt.UTC).timestamp()) // 3600
    effects = Effects(
        touched={
            ("380", "health", "visit.checked_in", hour),
            ("380", "health", "visit.insured", hour + 2),
            ("38", "culture", "ticket.sold", hour),
        }
    )
    updates = kpi_updates(effects)
    assert len(updates) == 2
    for update in updates:
        assert errors(described["payload"], orjson.loads(update.model_dump_json(by_alias=True))) == []
        assert errors(described["bindings"]["kafka"]["key"], update.unit) == []
