"""What every connector format shares: per-record outcomes, date parsing in the senders'
formats, identifiers that fit the event contract, and the CloudEvent a derivation yields.

Pure: no I/O. Error messages name fields, never quote values: a value may be personal data.
"""

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
REF_MAX = 64


class RecordError(ValueError):
    """One record cannot be used: ``field`` says where (a field name, never a value)."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


@dataclass(frozen=True, slots=True)
class Event:
    """A CloudEvent derived from a record, before validation (``services.ingest.pipeline``)."""

    id: str
    source: str
    sector: str
    entity: str
    verb: str
    time: dt.datetime
    unit: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return f"vn.gov.thanhhoa.{self.sector}.{self.entity}.{self.verb}"

    def raw(self) -> dict[str, Any]:
        """The structured-mode JSON object :func:`schemas.envelope.validate_event` takes."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": self.time.isoformat(),
            "unit": self.unit,
            "data": self.data,
        }


def digest(*parts: str, size: int = 10) -> str:
    """A short stable hex digest of the parts (BLAKE2b; ``size`` bytes)."""
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def as_ref(value: str, prefix: str = "h") -> str:
    """``value`` when it is a valid event identifier (``schemas.events.base.Ref``), else a
    stable digest of it: the same input always gives the same identifier."""
    if len(value) <= REF_MAX and _REF.match(value):
        return value
    return f"{prefix}:{digest(value)}"


def is_ref(value: str) -> bool:
    return len(value) <= REF_MAX and bool(_REF.match(value))


def text(record: dict[str, Any], name: str) -> str:
    """A field the senders send as a string; absent, null and blank give ''. A number is
    taken as its decimal text (some senders do not quote); anything else is an error."""
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        raise RecordError(name, "must be a string", "type_error")
    if isinstance(value, int | float):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(name, "must be a string", "type_error")
    return value.strip()


def items(record: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A list-of-objects field; absent or null give []."""
    value = record.get(name)
    if value is None or value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise RecordError(name, "must be a list of objects", "type_error")
    return value


def parse_compact(value: str, name: str) -> dt.datetime | None:
    """``yyyyMMddHHmmss`` (or its ``yyyyMMddHHmm`` / ``yyyyMMdd`` prefixes) in Vietnam
    time; '' gives None. Raises RecordError naming the field when it does not parse."""
    if not value:
        return None
    formats = {14: "%Y%m%d%H%M%S", 12: "%Y%m%d%H%M", 8: "%Y%m%d"}
    fmt = formats.get(len(value))
    if fmt is None or not value.isdigit():
        raise RecordError(name, "is not a date in the form yyyyMMddHHmmss", "invalid_date")
    try:
        moment = dt.datetime.strptime(value, fmt)
    except ValueError:
        raise RecordError(name, "is not a valid calendar date (yyyyMMddHHmmss)", "invalid_date") from None
    if not 1990 <= moment.year <= 2200:
        raise RecordError(name, "is outside the years 1990-2200", "invalid_date")
    return moment.replace(tzinfo=VN)


def parse_slashed(value: str, name: str) -> dt.datetime | None:
    """edXML dates: ``yyyy/MM/dd HH:mm:ss`` or ``yyyy/MM/dd``, Vietnam time."""
    if not value:
        return None
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d"):
        try:
            moment = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        if not 1990 <= moment.year <= 2200:
            break
        return moment.replace(tzinfo=VN)
    raise RecordError(name, "is not a date in the form yyyy/MM/dd HH:mm:ss", "invalid_date")
