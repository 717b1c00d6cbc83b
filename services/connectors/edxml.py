"""edXML messages (QCVN 102:2016/BTTTT) → document CloudEvents.

Two kinds of message arrive from the national document exchange axis:

- a **document** (``MessageHeader/DocumentId``, ``From``, ``To``…, attachments): issued by
  an organ of the province → ``document.outgoing_issued`` (signatures read from the
  attached PDF, ``signatures.py``); for each receiving organ of the province →
  ``document.incoming_registered`` (arrived electronically, not yet processed);
  ``BussinessDocType`` 1 (revoke) → ``document.revoked``; 3 (replace) → revoked for the
  replaced documents and issued for the new one; 2 (update) → issued again;
- a **status** (``ResponseFor/DocumentId``, ``StatusCode``) from a receiving organ of the
  province: 03 registered, 04 assigned, 05 processing, 06 done → the incoming document was
  processed on the system; 01 arrived → registered, not processed; 02 refused → revoked
  for that organ; 13/15/16 (recall flows, answered by the sender's revoke) → nothing.

Names, addresses, phones, e-mails, the subject and the signer's name in the header are never
read. The header's XML-DSig is the sending *system's* signature and is not looked at.
Pure apart from reading the given bytes.
"""

import datetime as dt
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from services.connectors import xmlsafe
from services.connectors.common import Event, RecordError, digest, is_ref, parse_slashed
from services.connectors.mappings import Mappings, Target
from services.connectors.signatures import PdfSignatures

NAMESPACE = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
NEW, REVOKE, UPDATE, REPLACE = 0, 1, 2, 3
PROCESSED = frozenset({"03", "04", "05", "06"})
STATUS_CODES = frozenset({"01", "02", "03", "04", "05", "06", "13", "15", "16"})


@dataclass(frozen=True, slots=True)
class DocumentMessage:
    document_id: str
    from_organ: str
    to_organs: tuple[str, ...]
    sent_at: dt.datetime
    doc_type: int
    replaced: tuple[tuple[str, tuple[str, ...]], ...]  # (DocumentId, organs told) per replaced document
    attachments: tuple[bytes, ...]  # PDF attachments


@dataclass(frozen=True, slots=True)
class StatusMessage:
    document_id: str
    responder: str
    status: str
    at: dt.datetime


Message = DocumentMessage | StatusMessage


def document_ref(document_id: str) -> str:
    """The ``document_id`` of an outgoing document: the edXML DocumentId with its commas
    as colons when that is a valid identifier, else a digest of it."""
    candidate = document_id.replace(",", ":")
    return candidate if is_ref(candidate) else f"vb:{digest(document_id)}"


def incoming_ref(document_id: str, organ: str) -> str:
    """The ``document_id`` of one receiving organ's incoming copy of a document."""
    return f"vbd:{digest(document_id, organ)}"


def _envelope(root: Element) -> tuple[Element, Element]:
    if xmlsafe.local(root.tag) != "edXML" or not root.tag.startswith("{" + NAMESPACE):
        raise RecordError("edXML", f"root must be edXML in the namespace {NAMESPACE}", "not_edxml")
    header = xmlsafe.path(root, "edXMLEnvelope", "edXMLHeader")
    message = xmlsafe.child(header, "MessageHeader") if header is not None else None
    if header is None or message is None:
        raise RecordError("edXMLHeader.MessageHeader", "is required", "missing")
    return header, message


def _required(element: Element | None, *names: str) -> str:
    found = xmlsafe.value(element, *names)
    if not found:
        raise RecordError(".".join(names), "is required", "missing")
    return found


def _attachments(root: Element, limit: int) -> tuple[bytes, ...]:
    out = []
    for index, attachment in enumerate(
        xmlsafe.children(xmlsafe.child(root, "AttachmentEncoded") or root, "Attachment")
    ):
        kind = xmlsafe.value(attachment, "ContentType").lower()
        name = xmlsafe.value(attachment, "AttachmentName").lower()
        if kind != "application/pdf" and not name.endswith(".pdf"):
            continue
        encoded = xmlsafe.value(attachment, "ContentTransferEncoded")
        out.append(xmlsafe.b64decode(encoded, f"Attachment[{index}].ContentTransferEncoded", limit))
    return tuple(out)


def _sent_at(header: Element, organ: str, fallback: str) -> dt.datetime:
    traces = xmlsafe.children(xmlsafe.child(header, "TraceHeaderList") or header, "TraceHeader")
    stamps = [xmlsafe.value(t, "Timestamp") for t in traces if xmlsafe.value(t, "OrganId") == organ]
    stamps = stamps or [xmlsafe.value(t, "Timestamp") for t in traces]
    for stamp in stamps:
        moment = parse_slashed(stamp, "TraceHeader.Timestamp")
        if moment is not None:
            return moment
    promulgated = parse_slashed(fallback, "PromulgationInfo.PromulgationDate")
    if promulgated is None:
        raise RecordError("TraceHeader.Timestamp", "a send time (or PromulgationDate) is required", "missing")
    return promulgated


def _document(root: Element, header: Element, message: Element, limit: int) -> DocumentMessage:
    document_id = _required(message, "DocumentId")
    sender = _required(message, "From", "OrganId")
    receivers = tuple(xmlsafe.value(to, "OrganId") for to in xmlsafe.children(message, "To"))
    business = xmlsafe.path(header, "TraceHeaderList", "Bussiness")
    kind = xmlsafe.value(business, "BussinessDocType") or "0"
    if kind not in ("0", "1", "2", "3"):
        raise RecordError("Bussiness.BussinessDocType", "must be 0 new, 1 revoke, 2 update or 3 replace", "invalid")
    replaced = []
    replacements = xmlsafe.path(business, "ReplacementInfoList")
    for info in xmlsafe.children(replacements, "ReplacementInfo") if replacements is not None else []:
        organs = tuple(
            xmlsafe.value(o) for o in xmlsafe.children(xmlsafe.child(info, "OrganIdList") or info, "OrganId")
        )
        replaced.append((_required(info, "DocumentId"), organs))
    return DocumentMessage(
        document_id=document_id,
        from_organ=sender,
        to_organs=tuple(r for r in receivers if r),
        sent_at=_sent_at(header, sender, xmlsafe.value(message, "PromulgationInfo", "PromulgationDate")),
        doc_type=int(kind),
        replaced=tuple(replaced),
        attachments=_attachments(root, limit),
    )


def _status(message: Element) -> StatusMessage:
    code = _required(message, "StatusCode")
    if code not in STATUS_CODES:
        raise RecordError("StatusCode", "is not a known edXML status code (01-06, 13, 15, 16)", "unknown_status")
    at = parse_slashed(_required(message, "Timestamp"), "Timestamp")
    assert at is not None
    return StatusMessage(
        _required(message, "ResponseFor", "DocumentId"), _required(message, "From", "OrganId"), code, at
    )


def parse_message(data: bytes, attachment_limit: int) -> Message:
    """One edXML message; RecordError (naming the element) when it cannot be used."""
    root = xmlsafe.parse(data, "edXML")
    header, message = _envelope(root)
    if xmlsafe.child(message, "StatusCode") is not None:
        return _status(message)
    return _document(root, header, message, attachment_limit)


@dataclass(frozen=True, slots=True)
class _Organ:
    code: str
    target: Target

    @property
    def unit(self) -> str:
        assert self.target.unit_code is not None
        return self.target.unit_code

    @property
    def sector(self) -> str:
        return self.target.sector or "general"


def _organ(mappings: Mappings, code: str) -> _Organ | None:
    target = mappings.organ(code)
    return _Organ(code, target) if target is not None and target.unit_code else None


def derive_document(
    msg: DocumentMessage, mappings: Mappings, signatures: PdfSignatures | None, source: str
) -> list[Event]:
    """Events of a document message (``signatures``: of its PDFs, for an outgoing one)."""
    out: list[Event] = []
    at = msg.sent_at
    sender = _organ(mappings, msg.from_organ)
    ref = document_ref(msg.document_id)

    def event(organ: _Organ, id_: str, verb: str, document_id: str, **data: object) -> Event:
        return Event(id_, source, organ.sector, "document", verb, at, organ.unit, {"document_id": document_id, **data})

    if sender is not None:
        for old, _ in msg.replaced if msg.doc_type == REPLACE else ():
            out.append(event(sender, f"{document_ref(old)}:revoked", "revoked", document_ref(old)))
        if msg.doc_type == REVOKE:
            out.append(event(sender, f"{ref}:revoked", "revoked", ref))
        else:
            agency = bool(signatures and signatures.agency_signed)
            personal = bool(signatures and signatures.personal_signed)
            version = digest(str(msg.doc_type), at.isoformat(), str(agency), str(personal), size=6)
            out.append(
                event(
                    sender,
                    f"{ref}:issued:{version}",
                    "outgoing_issued",
                    ref,
                    agency_signed=agency,
                    personal_signed=personal,
                )
            )
    for code in dict.fromkeys(msg.to_organs):
        receiver = _organ(mappings, code)
        if receiver is None:
            continue
        for old, organs in msg.replaced if msg.doc_type == REPLACE else ():
            if not organs or code in organs:
                old_ref = incoming_ref(old, code)
                out.append(event(receiver, f"{old_ref}:revoked", "revoked", old_ref))
        in_ref = incoming_ref(msg.document_id, code)
        if msg.doc_type == REVOKE:
            out.append(event(receiver, f"{in_ref}:revoked", "revoked", in_ref))
        else:
            out.append(
                event(
                    receiver,
                    f"{in_ref}:arrived",
                    "incoming_registered",
                    in_ref,
                    received_electronically=True,
                    processed_on_system=False,
                )
            )
    return out


def derive_status(msg: StatusMessage, mappings: Mappings, source: str) -> list[Event]:
    """Events of a status message from a receiving organ."""
    organ = _organ(mappings, msg.responder)
    if organ is None or msg.status not in PROCESSED | {"01", "02"}:
        return []
    in_ref = incoming_ref(msg.document_id, msg.responder)
    base = Event(f"{in_ref}:status:{msg.status}", source, organ.sector, "document", "", msg.at, organ.unit)
    if msg.status == "02":
        return [_with(base, "revoked", {"document_id": in_ref})]
    data = {"document_id": in_ref, "received_electronically": True, "processed_on_system": msg.status in PROCESSED}
    return [_with(base, "incoming_registered", data)]


def _with(base: Event, verb: str, data: dict[str, object]) -> Event:
    return Event(base.id, base.source, base.sector, base.entity, verb, base.time, base.unit, dict(data))


def is_outgoing(msg: DocumentMessage, mappings: Mappings) -> bool:
    """Whether the sender is an organ of the province (its PDFs are then read)."""
    return msg.doc_type != REVOKE and _organ(mappings, msg.from_organ) is not None
