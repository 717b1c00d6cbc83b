"""HTTP conventions of the KPI API: JSON or CSV by ``Accept``, strong ETags with 304 on
``If-None-Match``, opaque cursors for paging."""

import base64
import csv
import datetime as dt
import hashlib
import io
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.runtime.problems import InvalidQuery

CSV_MEDIA_TYPE = "text/csv"
CSV_CONTEXT = ("as_of", "history", "reforms", "unit_valid_from", "unit_valid_to")


def wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return CSV_MEDIA_TYPE in accept or request.query_params.get("format") == "csv"


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        # a list of records with an identity (score groups, indicators) becomes columns
        for inner in value:
            ident = next((inner[k] for k in ("group", "kpi", "unit") if k in inner), None)
            if ident is None:
                out[prefix] = orjson.dumps(value).decode()
                return
            _flatten(f"{prefix}.{ident}", {k: v for k, v in inner.items() if k not in ("group", "kpi", "unit")}, out)
    elif isinstance(value, list):
        out[prefix] = ";".join(str(v) for v in value)
    else:
        out[prefix] = "" if value is None else value


def to_csv(items: Sequence[dict[str, Any]]) -> bytes:
    """Items as CSV; nested objects become dotted columns, lists are ';'-joined."""
    rows = []
    for item in items:
        flat: dict[str, Any] = {}
        _flatten("", item, flat)
        rows.append(flat)
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def json_ready(data: dict[str, Any]) -> dict[str, Any]:
    """A payload built as plain data, with its top-level dates and times in ISO 8601 as
    pydantic's JSON mode writes them (nested values must already be JSON types)."""
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in data.items()}


def respond(request: Request, payload: BaseModel | dict[str, Any], *, filename: str = "export") -> Response:
    """Serve a payload as JSON, or its ``items`` as CSV, with an ETag (304 when it matches).

    A model is dumped in JSON mode; a dict is served as it is (:func:`json_ready`) - for
    answers of thousands of rows the code itself computed, where validating and dumping
    each row costs more than the query (the response model still documents it, and the
    integration tests validate it)."""
    data = payload.model_dump(mode="json", by_alias=True) if isinstance(payload, BaseModel) else json_ready(payload)
    if wants_csv(request):
        # what the answer says about units and reforms travels with every row of the export
        context = {k: data[k] for k in CSV_CONTEXT if k in data}
        body = to_csv([{**context, **item} for item in data.get("items", [data])])
        media = f"{CSV_MEDIA_TYPE}; charset=utf-8"
        headers = {"Content-Disposition": f'attachment; filename="{filename}.csv"'}
    else:
        body = orjson.dumps(data)
        media = "application/json"
        headers = {}
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers.update({"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept, Authorization"})
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    cursor = data.get("next_cursor")
    if cursor:
        url = request.url.include_query_params(cursor=cursor)
        headers["Link"] = f'<{url}>; rel="next"'
    return Response(body, media_type=media, headers=headers)


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidQuery(
            "invalid cursor", errors=[{"field": "cursor", "message": "not a cursor this API issued", "code": "cursor"}]
        ) from None


def page(items: list[Any], cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
    """Offset paging over a computed list, behind an opaque cursor."""
    offset = decode_cursor(cursor) or 0
    if not isinstance(offset, int) or offset < 0:
        raise InvalidQuery("invalid cursor")
    chunk = items[offset : offset + limit]
    nxt = encode_cursor(offset + limit) if offset + limit < len(items) else None
    return chunk, nxt
