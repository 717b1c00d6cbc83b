"""The CloudEvents Kafka protocol binding as this system writes it: binary content mode.

One place for the record layout every writer (sector services, connectors, the simulator's
direct producer) and every reader (the aggregator, alerts) shares: the ``ce_*`` headers
carry the context attributes, the value is the JSON ``data``, the key is the unit code.
"""

from collections.abc import Mapping

Headers = list[tuple[str, bytes]]

# Context attributes every record carries, as ``ce_<name>`` headers, in this order.
REQUIRED_ATTRIBUTES: tuple[str, ...] = ("specversion", "id", "source", "type", "time", "unit")
REQUIRED_HEADERS: tuple[str, ...] = tuple(f"ce_{name}" for name in REQUIRED_ATTRIBUTES)
# Optional context attributes, carried when present.
OPTIONAL_ATTRIBUTES: tuple[str, ...] = ("subject", "dataschema", "traceparent", "tracestate")
CONTENT_TYPE = ("content-type", b"application/json")


def kafka_headers(attributes: Mapping[str, object]) -> Headers:
    """Headers of one record from an event's (already validated) context attributes; ``time``
    is written as given (an RFC 3339 string) or, for a datetime, in ISO 8601."""
    headers: Headers = [("ce_specversion", b"1.0")]  # the only version accepted anywhere
    for name in REQUIRED_ATTRIBUTES[1:]:
        value = attributes[name]
        text = value if isinstance(value, str) else value.isoformat()  # type: ignore[attr-defined]
        headers.append((f"ce_{name}", text.encode()))
    headers.append(CONTENT_TYPE)
    for name in OPTIONAL_ATTRIBUTES:
        value = attributes.get(name)
        if value is not None:
            headers.append((f"ce_{name}", str(value).encode()))
    return headers
