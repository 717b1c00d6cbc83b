"""Within a major version, event schemas change only in backward-compatible ways.

``schemas/baseline/v<major>/`` holds the event schemas as released; the current models must
accept every event those schemas accept. :func:`breaking_changes` is tested on small pairs
first, then applied to the real baseline.
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas import SCHEMA_MAJOR_VERSION, export
from schemas.evolution import breaking_changes, catalogue_breaking_changes

BASELINE = Path(__file__).resolve().parents[2] / "schemas" / "baseline" / f"v{SCHEMA_MAJOR_VERSION}"

OLD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-z0-9-]+$"},
        "channel": {"type": "string", "enum": ["online", "counter"]},
        "minutes": {"type": "number", "exclusiveMinimum": 0, "maximum": 1440},
        "count": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
        "title": {
            "anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}],
            "default": None,
        },
        "when": {"type": "string", "format": "date-time"},
        "sector": {"$ref": "#/$defs/Sector"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}},
        "extra": {"type": "object"},
    },
    "required": ["id", "channel"],
    "additionalProperties": False,
    "$defs": {"Sector": {"type": "string", "enum": ["health", "culture"]}},
}


def changed(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    edit(new)
    return new


def props(schema: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = schema["properties"]
    return result


COMPATIBLE: dict[str, Callable[[dict[str, Any]], None]] = {
    "nothing": lambda s: None,
    "optional property added": lambda s: props(s).update(site={"type": "string"}),
    "required property added with a default": lambda s: (
        props(s).update(site={"type": "string", "default": "main"}),
        s["required"].append("site"),
    ),
    "property no longer required": lambda s: s["required"].remove("channel"),
    "enum value added": lambda s: props(s)["channel"]["enum"].append("app"),
    "enum value added through $ref": lambda s: s["$defs"]["Sector"]["enum"].append("transport"),
    "maxLength loosened": lambda s: props(s)["id"].update(maxLength=128),
    "minLength loosened": lambda s: props(s)["id"].pop("minLength"),
    "pattern removed": lambda s: props(s)["id"].pop("pattern"),
    "minimum loosened": lambda s: props(s)["count"].update(minimum=0),
    "maximum removed": lambda s: props(s)["count"].pop("maximum"),
    "exclusive minimum made inclusive": lambda s: (
        props(s)["minutes"].pop("exclusiveMinimum"),
        props(s)["minutes"].update(minimum=0),
    ),
    "integer widened to number": lambda s: props(s)["count"].update(type="number"),
    "made nullable": lambda s: props(s).update(id={"anyOf": [props(s)["id"], {"type": "null"}], "default": None}),
    "format removed": lambda s: props(s)["when"].pop("format"),
    "description changed": lambda s: props(s)["id"].update(description="Something else."),
    "items loosened": lambda s: props(s)["tags"]["items"].pop("maxLength"),
}


@pytest.mark.parametrize("name", sorted(COMPATIBLE))
def test_compatible_changes_are_allowed(name: str) -> None:
    assert breaking_changes(OLD, changed(COMPATIBLE[name])) == []


BREAKING: dict[str, tuple[Callable[[dict[str, Any]], None], list[str]]] = {
    "property removed": (lambda s: props(s).pop("minutes"), ["$.minutes: property removed"]),
    "property became required": (
        lambda s: s["required"].append("minutes"),
        ["$.minutes: became required"],
    ),
    "new required property without a default": (
        lambda s: (props(s).update(site={"type": "string"}), s["required"].append("site")),
        ["$.site: new required property without a default"],
    ),
    "type changed": (
        lambda s: props(s)["count"].update(type="string"),
        ["$.count: type narrowed from ['integer'] to ['string']"],
    ),
    "number narrowed to integer": (
        lambda s: props(s)["minutes"].update(type="integer"),
        ["$.minutes: type narrowed from ['number'] to ['integer']"],
    ),
    "nullable no longer": (
        lambda s: props(s).update(title={"type": "string", "maxLength": 200}),
        ["$.title: type narrowed from ['null'] to ['string']"],
    ),
    "enum value removed": (
        lambda s: props(s)["channel"]["enum"].remove("counter"),
        ["$.channel: enum value 'counter' removed"],
    ),
    "enum value removed through $ref": (
        lambda s: s["$defs"]["Sector"]["enum"].remove("culture"),
        ["$.sector: enum value 'culture' removed"],
    ),
    "free string restricted to values": (
        lambda s: props(s)["id"].update(enum=["a", "b"]),
        ["$.id: values restricted to ['a', 'b']"],
    ),
    "maxLength smaller": (
        lambda s: props(s)["id"].update(maxLength=32),
        ["$.id: maxLength tightened from 64 to 32"],
    ),
    "minLength larger": (
        lambda s: props(s)["id"].update(minLength=3),
        ["$.id: minLength tightened from 1 to 3"],
    ),
    "maxLength in a nullable branch": (
        lambda s: props(s)["title"]["anyOf"][0].update(maxLength=100),
        ["$.title: maxLength tightened from 200 to 100"],
    ),
    "maxLength of array items": (
        lambda s: props(s)["tags"]["items"].update(maxLength=10),
        ["$.tags[]: maxLength tightened from 20 to 10"],
    ),
    "minimum larger": (
        lambda s: props(s)["count"].update(minimum=5),
        ["$.count: lower bound tightened from >= 1 to >= 5"],
    ),
    "maximum made exclusive": (
        lambda s: (
            props(s)["minutes"].pop("maximum"),
            props(s)["minutes"].update(exclusiveMaximum=1440),
        ),
        ["$.minutes: upper bound tightened from <= 1440 to < 1440"],
    ),
    "maximum lowered": (
        lambda s: props(s)["minutes"].update(maximum=60),
        ["$.minutes: upper bound tightened from <= 1440 to <= 60"],
    ),
    "pattern changed": (
        lambda s: props(s)["id"].update(pattern="^[a-z]+$"),
        ["$.id: pattern changed from '^[a-z0-9-]+$' to '^[a-z]+$'"],
    ),
    "format changed": (
        lambda s: props(s)["when"].update(format="date"),
        ["$.when: format changed from 'date-time' to 'date'"],
    ),
    "default changed": (
        lambda s: props(s)["count"].update(default=2),
        ["$.count: default changed from 1 to 2"],
    ),
    "object closed": (
        lambda s: props(s)["extra"].update(additionalProperties=False),
        ["$.extra: additional properties no longer allowed"],
    ),
    "several at once": (
        lambda s: (props(s).pop("when"), props(s)["channel"]["enum"].remove("online")),
        ["$.when: property removed", "$.channel: enum value 'online' removed"],
    ),
}


@pytest.mark.parametrize("name", sorted(BREAKING))
def test_breaking_changes_are_reported(name: str) -> None:
    edit, expected = BREAKING[name]
    assert breaking_changes(OLD, changed(edit)) == expected


def test_const_change_is_reported() -> None:
    assert breaking_changes({"type": "string", "const": "vn.gov.a"}, {"type": "string", "const": "vn.gov.b"}) == [
        "$: const changed from 'vn.gov.a' to 'vn.gov.b'"
    ]


def test_catalogue_reports_removed_event_types_and_names_the_type() -> None:
    narrowed = changed(lambda s: props(s)["id"].update(maxLength=8))
    assert catalogue_breaking_changes({"a": OLD, "b": OLD}, {"b": narrowed, "c": OLD}) == [
        "a: event type removed",
        "b: $.id: maxLength tightened from 64 to 8",
    ]


# -- the real baseline ------------------------------------------------------------------------


def baseline() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".schema.json"): json.loads(path.read_text())
        for path in sorted(BASELINE.glob("*.schema.json"))
    }


def test_current_event_schemas_are_compatible_with_the_released_baseline() -> None:
    released = baseline()
    assert released, f"no baseline in {BASELINE}: run `python -m schemas.export --baseline`"
    problems = catalogue_breaking_changes(released, export.event_schemas())
    assert not problems, (
        f"breaking changes to released v{SCHEMA_MAJOR_VERSION} event schemas:\n  "
        + "\n  ".join(problems)
        + "\nMake the change backward compatible (e.g. a new optional field with a default), "
        "or bump SCHEMA_MAJOR_VERSION and start a new baseline."
    )


def test_the_guard_catches_a_breaking_change_to_a_real_model() -> None:
    type_ = "vn.gov.thanhhoa.health.dossier.received"
    released = baseline()[type_]
    current = copy.deepcopy(released)
    data = current["properties"]["data"]
    data["properties"]["channel"]["enum"].remove("post")
    data["properties"]["procedure_code"]["maxLength"] = 32
    data["required"].append("digitised")
    assert breaking_changes(released, current) == [
        "$.data.digitised: became required",
        "$.data.channel: enum value 'post' removed",
        "$.data.procedure_code: maxLength tightened from 64 to 32",
    ]
