"""Untrusted XML, parsed safely by construction.

defusedxml's ElementTree parser refuses any DTD (so no entity can be declared: no billion
laughs, no quadratic blow-up, no external entity, no network access); the caller has
already bounded the size. Every refusal is a :class:`RecordError` with a reason a sender
can act on. Pure: no I/O.
"""

import base64
import binascii
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml.ElementTree import fromstring  # type: ignore[import-untyped]

from services.connectors.common import RecordError


def parse(data: bytes, where: str = "(body)") -> Element:
    """The root element; RecordError for a DTD, an entity, or XML that is not well-formed."""
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        return root
    except DefusedXmlException:
        raise RecordError(
            where, "XML with a DOCTYPE, entity declarations or external references is refused", "xml_forbidden"
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise RecordError(where, f"is not well-formed XML (line {line}, column {column})", "xml_malformed") from None


def b64decode(value: str, where: str, limit: int) -> bytes:
    """Decode base64 content (whitespace allowed), refusing more than ``limit`` bytes."""
    compact = "".join(value.split())
    if len(compact) * 3 // 4 > limit:
        raise RecordError(where, f"decodes to more than {limit} bytes", "too_large")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(where, "is not valid base64", "invalid_base64") from None


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def child(element: Element, name: str) -> Element | None:
    """The first direct child with this local name (any namespace)."""
    for item in element:
        if local(item.tag) == name:
            return item
    return None


def children(element: Element, name: str) -> list[Element]:
    return [item for item in element if local(item.tag) == name]


def path(element: Element | None, *names: str) -> Element | None:
    for name in names:
        if element is None:
            return None
        element = child(element, name)
    return element


def value(element: Element | None, *names: str) -> str:
    """Stripped text at a child path; '' when absent."""
    found = path(element, *names) if names else element
    return (found.text or "").strip() if found is not None else ""
