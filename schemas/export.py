"""Generate the contract artifacts under ``schemas/generated`` from the pydantic models.

``python -m schemas.export`` (``make schemas``) writes them, deterministically; ``--check``
compares in memory and exits 1 naming stale files; ``--baseline`` adds event types not yet
released to ``schemas/baseline/v<major>/``, never rewriting a released schema.
"""

import argparse
import copy
import importlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from schemas import SCHEMA_MAJOR_VERSION
from schemas.binding import OPTIONAL_ATTRIBUTES, REQUIRED_ATTRIBUTES
from schemas.envelope import CloudEventEnvelope
from schemas.events import EVENT_SPECS, EventSpec, specs_of_sector
from schemas.sectors import INGEST_SECTORS, SECTORS
from schemas.streams import DLQ_HEADERS, KpiUpdate
from schemas.topics import TOPICS, TopicSpec, deadletter_topic, kpi_updates_topic, sector_topic

JSON = dict[str, Any]

ROOT = Path(__file__).resolve().parent
GENERATED = ROOT / "generated"
BASELINE = ROOT / "baseline" / f"v{SCHEMA_MAJOR_VERSION}"
ID_BASE = "https://smartcity.thanhhoa.gov.vn/schemas"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.4.0"
AGGREGATOR = "kpi-aggregator"  # the application tag of the aggregator's operations

# (artifact name, module with a module-level FastAPI ``app``). Importing a module builds its
# app without running its lifespan; modules that do not exist yet are skipped.
OPENAPI_APPS: tuple[tuple[str, str], ...] = (
    ("education", "services.education.app"),
    ("health", "services.health.app"),
    ("transport", "services.transport.app"),
    ("culture", "services.culture.app"),
    ("kpi_api", "services.kpi_api.app"),
    ("connectors", "services.connectors.app"),
)

# CloudEvents Kafka binding, binary content mode (schemas/binding.py): ce_<attribute> headers
# plus content-type.
REQUIRED_HEADERS: tuple[str, ...] = REQUIRED_ATTRIBUTES
OPTIONAL_HEADERS: tuple[str, ...] = OPTIONAL_ATTRIBUTES


def render(document: JSON) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _model(spec: EventSpec) -> type[BaseModel]:
    # EventSpec's field ``type`` shadows the builtin in its class body, so mypy cannot read
    # the annotation of ``model``; the cast keeps this module clean until that is fixed.
    return cast(type[BaseModel], spec.model)


def _inline(schema: JSON) -> JSON:
    """The schema with its ``#/$defs/...`` references replaced by their targets, for
    embedding where ``#`` is not the schema's root (AsyncAPI payloads)."""
    defs: JSON = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**walk(defs[ref.removeprefix("#/$defs/")]), **walk(rest)}
        return {k: walk(v) for k, v in node.items() if k != "$defs"}

    return cast(JSON, walk(schema))


def _envelope_properties() -> JSON:
    return cast(JSON, copy.deepcopy(CloudEventEnvelope.model_json_schema()["properties"]))


def _not_null(schema: JSON) -> JSON:
    """An optional attribute's schema without its ``null`` branch and default."""
    branches = [b for b in schema.get("anyOf", []) if b != {"type": "null"}]
    outer = {k: v for k, v in schema.items() if k not in ("anyOf", "default", "examples", "title")}
    return {**outer, **branches[0]} if len(branches) == 1 else outer


def event_schema(spec: EventSpec) -> JSON:
    envelope = copy.deepcopy(CloudEventEnvelope.model_json_schema())
    data = _model(spec).model_json_schema()
    defs = {**envelope.pop("$defs", {}), **data.pop("$defs", {})}
    props = envelope["properties"]
    props["type"] = {k: v for k, v in props["type"].items() if k in ("description", "title")}
    props["type"] |= {"const": spec.type, "type": "string"}
    props["data"] = data
    schema: JSON = {
        "$schema": DRAFT_2020_12,
        "$id": f"{ID_BASE}/events/{spec.type}.schema.json",
        "title": spec.type,
        "description": inspect.cleandoc(_model(spec).__doc__ or ""),
        "type": "object",
        "properties": props,
        "required": envelope["required"],
        "additionalProperties": False,
    }
    return schema | ({"$defs": defs} if defs else {})


def event_schemas() -> dict[str, JSON]:
    return {type_: event_schema(spec) for type_, spec in EVENT_SPECS.items()}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def openapi_documents() -> dict[str, JSON]:
    return {
        name: cast(JSON, importlib.import_module(module).app.openapi())
        for name, module in OPENAPI_APPS
        if _module_exists(module)
    }


def _kafka_key(key: JSON | None = None) -> JSON:
    """Kafka message binding; the key is the unit code unless said otherwise."""
    unit = {**_envelope_properties()["unit"], "description": "The unit code (as ce_unit)."}
    return {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION, "key": key or unit}}


def event_headers(type_: str) -> JSON:
    props = _envelope_properties()
    headers = {f"ce_{a}": _not_null(props[a]) for a in (*REQUIRED_HEADERS, *OPTIONAL_HEADERS)}
    headers["ce_type"] = {"const": type_, "type": "string"}
    headers["ce_time"]["description"] = "Event time, RFC 3339 with offset."
    headers["content-type"] = {"const": "application/json", "type": "string"}
    return {
        "type": "object",
        "description": "CloudEvents Kafka protocol binding, binary content mode (UTF-8 values).",
        "properties": headers,
        "required": [*(f"ce_{a}" for a in REQUIRED_HEADERS), "content-type"],
    }


def _event_message(spec: EventSpec) -> JSON:
    model = _model(spec)
    doc = inspect.cleandoc(model.__doc__ or "")
    return {
        "name": spec.type,
        "title": f"{model.__name__} ({spec.sector.value})",
        "summary": doc.splitlines()[0] if doc else spec.type,
        "description": doc,
        "contentType": "application/json",
        "payload": _inline(model.model_json_schema()),
        "headers": event_headers(spec.type),
        "bindings": _kafka_key(),
    }


def _dead_letter_message() -> JSON:
    number = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "name": "deadLetter",
        "title": "Dead letter",
        "summary": "A record the aggregator could not process, with the reason.",
        "description": "The original record's key, value and headers, byte for byte, plus "
        "`dlq_*` headers saying why it was rejected and where it was read.",
        "contentType": "application/octet-stream",
        "payload": {
            "description": "The original value: normally the event data as JSON, "
            "but a poison record may hold any bytes."
        },
        "headers": {
            "type": "object",
            "description": "The original record's headers (normally the ce_* headers), plus:",
            "properties": {
                "dlq_reason": {"type": "string", "maxLength": 1000, "description": DLQ_HEADERS["dlq_reason"]},
                "dlq_topic": {"type": "string", "description": DLQ_HEADERS["dlq_topic"]},
                "dlq_partition": {**number, "description": DLQ_HEADERS["dlq_partition"]},
                "dlq_offset": {**number, "description": DLQ_HEADERS["dlq_offset"]},
            },
            "required": sorted(DLQ_HEADERS),
        },
        "bindings": _kafka_key({"type": ["string", "null"], "description": "The original key."}),
    }


def _kpi_update_message() -> JSON:
    return {
        "name": "kpiUpdate",
        "title": "KPI update",
        "summary": "Counters of one (unit, sector) changed.",
        "description": inspect.cleandoc(KpiUpdate.__doc__ or ""),
        "contentType": "application/json",
        "payload": _inline(KpiUpdate.model_json_schema(by_alias=True)),
        "bindings": _kafka_key(),
    }


def _channel(topic: TopicSpec) -> JSON:
    config = {"cleanup.policy": [topic.cleanup_policy], "retention.ms": topic.retention_ms}
    kafka: JSON = {
        "bindingVersion": KAFKA_BINDING_VERSION,
        "partitions": topic.partitions,
        "topicConfiguration": config,
    }
    if topic.replication_factor is not None:
        kafka["replicas"] = topic.replication_factor
    return {
        "address": topic.base_name,
        "description": f"{topic.description} The name may carry a prefix (KAFKA_TOPIC_PREFIX).",
        "bindings": {"kafka": kafka},
    }


def _operation(action: str, channel: str, messages: list[str], app: str, summary: str) -> JSON:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages],
        "summary": summary,
        "tags": [{"name": app}],
    }


def asyncapi_document() -> JSON:
    channels: JSON = {topic.base_name: _channel(topic) for topic in TOPICS}
    messages: JSON = {type_: _event_message(spec) for type_, spec in EVENT_SPECS.items()}
    messages |= {"deadLetter": _dead_letter_message(), "kpiUpdate": _kpi_update_message()}
    operations: JSON = {}
    for sector in SECTORS:
        topic, types = sector_topic(sector), [s.type for s in specs_of_sector(sector)]
        channels[topic]["messages"] = {t: {"$ref": f"#/components/messages/{t}"} for t in types}
        name = sector.value.capitalize()
        if sector in INGEST_SECTORS:
            app, send = (
                f"{sector.value}-service",
                f"The {sector.value} service publishes every accepted event, keyed by unit.",
            )
        else:
            app, send = "connectors", f"The connectors publish {sector.value} dossiers, keyed by unit."
        receive = f"The aggregator counts {sector.value} events into the KPI counters."
        operations[f"send{name}Events"] = _operation("send", topic, types, app, send)
        operations[f"receive{name}Events"] = _operation("receive", topic, types, AGGREGATOR, receive)
    for topic, message, operation, summary in (
        (deadletter_topic(), "deadLetter", "sendDeadLetters", "Records it cannot process."),
        (kpi_updates_topic(), "kpiUpdate", "sendKpiUpdates", "What each committed batch changed."),
    ):
        channels[topic]["messages"] = {message: {"$ref": f"#/components/messages/{message}"}}
        operations[operation] = _operation("send", topic, [message], AGGREGATOR, summary)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Thanh Hoa smart city - event streams",
            "version": f"{SCHEMA_MAJOR_VERSION}.0.0",
            "description": "Kafka topics of the e-government KPI backend; each operation is "
            "tagged with the application that performs it. Generated from the models in "
            "`schemas/` by `make schemas`: do not edit.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def artifacts() -> dict[str, str]:
    """Every generated file: its path under ``schemas/generated`` and its content."""
    files = {f"events/{t}.schema.json": render(s) for t, s in event_schemas().items()}
    files |= {f"openapi/{name}.json": render(doc) for name, doc in openapi_documents().items()}
    files["asyncapi.json"] = render(asyncapi_document())
    return files


def _differences(files: dict[str, str], root: Path) -> tuple[list[str], list[str]]:
    """(files missing or different under ``root``, JSON files there no longer generated)."""
    changed = [
        name
        for name, text in sorted(files.items())
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]
    orphans = {p.relative_to(root).as_posix() for p in root.rglob("*.json")} - files.keys()
    return changed, sorted(orphans)


def stale_files(root: Path = GENERATED) -> list[str]:
    """Committed files that differ from a fresh generation (compared in memory)."""
    return [name for names in _differences(artifacts(), root) for name in names]


def write(root: Path = GENERATED) -> list[str]:
    """Write the changed artifacts and remove orphans; return their names."""
    files = artifacts()
    changed, orphans = _differences(files, root)
    for name in orphans:
        (root / name).unlink()
    for name in changed:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(files[name], encoding="utf-8")
    return changed + orphans


def write_baseline(root: Path = BASELINE) -> list[str]:
    """Add the schema of every event type missing from the baseline; never rewrite one."""
    root.mkdir(parents=True, exist_ok=True)
    added = []
    for type_, schema in event_schemas().items():
        path = root / f"{type_}.schema.json"
        if not path.exists():
            path.write_text(render(schema), encoding="utf-8")
            added.append(path.name)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when artifacts are stale")
    mode.add_argument("--baseline", action="store_true", help="add new event types to it")
    args = parser.parse_args(argv)
    if args.baseline:
        added = write_baseline()
        print(f"{BASELINE.relative_to(ROOT.parent)}: {len(added)} schema(s) added")
        return 0
    if not args.check:
        print(f"schemas/generated: {len(write())} file(s) written or removed")
        return 0
    stale = stale_files()
    print("".join(f"stale: schemas/generated/{name}\n" for name in stale), end="")
    print("contract artifacts are stale: run `make schemas`" if stale else "up to date")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
