"""Encode simulator events straight into Kafka records (binary content mode), bypassing
the HTTP services - for filling topics in tests and benchmarks. The layout is the one the
services write (``services.ingest.pipeline.kafka_headers``); a test keeps them equal."""

from typing import Any

import orjson

from schemas.binding import Headers, kafka_headers


def to_record(event: dict[str, Any]) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of one structured-mode event dict."""
    return event["unit"].encode(), orjson.dumps(event["data"]), kafka_headers(event)
