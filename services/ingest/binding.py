"""The CloudEvents HTTP binding (v1.0): binary, structured and batched content modes.

Pure functions from an HTTP request's content type, headers and body to decoded event
objects. Nothing here validates events against the contract; that is ``schemas.envelope``.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

import orjson

from services.runtime.problems import Malformed, PayloadTooLarge, UnsupportedMediaType

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"


class Mode(StrEnum):
    BINARY = "binary"
    STRUCTURED = "structured"
    BATCH = "batch"


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower-cased, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def classify(content_type: str | None, headers: Mapping[str, str]) -> Mode:
    """Decide the content mode; raise 415 for a content type we do not take."""
    kind = media_type(content_type)
    if kind == BATCH:
        return Mode.BATCH
    if kind == STRUCTURED:
        return Mode.STRUCTURED
    if "ce-specversion" in headers:
        if kind not in (JSON, ""):
            raise UnsupportedMediaType(f"binary mode carries JSON data only (Content-Type {JSON}), got {kind!r}")
        return Mode.BINARY
    if kind == JSON:
        raise Malformed(
            "a JSON body without ce-* headers is not a CloudEvent: send binary mode "
            f"(ce-specversion, ce-id, … headers) or Content-Type {STRUCTURED}"
        )
    raise UnsupportedMediaType(
        f"unsupported Content-Type {kind or '(none)'!r}; use {STRUCTURED}, {BATCH}, "
        f"or {JSON} with ce-* headers (binary mode)"
    )


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not valid JSON: {exc}") from None


def parse_binary(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """Rebuild the event object from ``ce-*`` headers (percent-decoded) and a JSON body."""
    event: dict[str, Any] = {name[3:]: unquote(value) for name, value in headers.items() if name.startswith("ce-")}
    event["data"] = _loads(body) if body else None
    kind = media_type(headers.get("content-type"))
    if kind:
        event["datacontenttype"] = kind
    return event


def parse_structured(body: bytes) -> Any:
    """One event object from a structured-mode body (validation decides if it is an object)."""
    return _loads(body)


def parse_batch(body: bytes, max_events: int) -> list[Any]:
    """The events of a batched-mode body: a JSON array of at most ``max_events`` items."""
    events = _loads(body)
    if not isinstance(events, list):
        raise Malformed("a batch must be a JSON array of CloudEvents")
    if len(events) > max_events:
        raise PayloadTooLarge(
            f"batch holds {len(events)} events; the limit is {max_events}",
            extra={"max_events": max_events},
        )
    return events
