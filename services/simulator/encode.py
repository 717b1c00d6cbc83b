"""Encode simulator events straight into Kafka records (binary content mode), bypassing
the HTTP services - for filling topics in tests and benchmarks. The layout is the one the
services write (``services.ingest.pipeline.kafka_headers``); a test keeps them equal."""

from typing import Any

import orjson

Headers = list[tuple[str, bytes]]


def to_record(event: dict[str, Any]) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of one structured-mode event dict."""
    headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event["id"].encode()),
        ("ce_source", event["source"].encode()),
        ("ce_type", event["type"].encode()),
        ("ce_time", event["time"].encode()),
        ("ce_unit", event["unit"].encode()),
        ("content-type", b"application/json"),
    ]
    return event["unit"].encode(), orjson.dumps(event["data"]), headers
