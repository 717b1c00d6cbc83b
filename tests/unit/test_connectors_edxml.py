"""edXML messages → document events, and PDF signatures (pure; PDFs signed at test time)."""

import datetime as dt

import orjson
import pytest

from schemas.envelope import validate_event
from services.connectors import edxml
from services.connectors.common import VN, RecordError
from services.connectors.signatures import PdfSignatures, SignerRule, load_rule, read_signatures
from tests.support.connectors_pdf import ORG_TAX_CODE, PERSON_ID, PERSON_NAME, signed_pdf, tampered
from tests.support.connectors_samples import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    PERSONAL_VALUES,
    edxml_document,
    edxml_status,
    fixture,
    starter_mappings,
)

MAPPINGS = starter_mappings()
RULE = load_rule()
SOURCE = "/connectors/edxml/test"
LIMIT = 10 * 1024 * 1024


def derive(body: bytes) -> list:
    msg = edxml.parse_message(body, LIMIT)
    if isinstance(msg, edxml.StatusMessage):
        return edxml.derive_status(msg, MAPPINGS, SOURCE)
    signatures = None
    if edxml.is_outgoing(msg, MAPPINGS):
        found = [read_signatures(pdf, RULE) for pdf in msg.attachments]
        signatures = PdfSignatures(tuple(c for f in found for c in f.classes), 0, True)
    return edxml.derive_document(msg, MAPPINGS, signatures, SOURCE)


def test_sample_new_document_from_the_province() -> None:
    msg = edxml.parse_message(fixture("edxml_edoc_new.sample.xml"), LIMIT)
    assert isinstance(msg, edxml.DocumentMessage)
    assert msg.from_organ == "000.00.00.H56" and msg.to_organs == ("000.00.00.G22",)
    assert msg.sent_at == dt.datetime(2025, 3, 14, 10, 20, tzinfo=VN) and msg.doc_type == 0
    events = derive(fixture("edxml_edoc_new.sample.xml"))
    # the government office (G22) is not an organ of the province: only the outgoing side
    assert [(e.verb, e.unit, e.sector) for e in events] == [("outgoing_issued", "38", "general")]
    # the attachment is a placeholder, not a signed PDF; the header XML-DSig is ignored
    assert events[0].data["agency_signed"] is False and events[0].data["personal_signed"] is False
    assert events[0].data["document_id"] == "000.00.00.H56:2025/03/14:1234/UBND-KSTTHC"


def test_sample_status_from_outside_the_province_derives_nothing() -> None:
    assert derive(fixture("edxml_status_06.sample.xml")) == []


@pytest.mark.parametrize(
    ("kinds", "agency", "personal"),
    [
        ((), False, False),
        (("personal",), False, True),
        (("organisation",), True, False),
        (("organisation", "personal"), True, True),
        (("unclassified",), False, False),
    ],
)
def test_signatures_of_the_attached_pdf(kinds: tuple[str, ...], agency: bool, personal: bool) -> None:
    events = derive(edxml_document(pdf=signed_pdf(*kinds)))
    issued = next(e for e in events if e.verb == "outgoing_issued")
    assert (issued.data["agency_signed"], issued.data["personal_signed"]) == (agency, personal)
    assert issued.unit == "390"
    for event in events:
        raw = orjson.dumps(event.raw()).decode()
        assert not isinstance(validate_event(event.raw()), list)
        assert PERSON_NAME not in raw and PERSON_ID not in raw and ORG_TAX_CODE not in raw


def test_a_tampered_signature_does_not_count() -> None:
    found = read_signatures(tampered(signed_pdf("personal")), RULE)
    assert found.classes == () and found.broken == 1
    assert read_signatures(b"not a pdf", RULE).readable is False


def test_rule_is_configurable() -> None:
    rule = SignerRule.from_toml('[[class]]\nname = "organisation"\nmatch = [{ attribute = "CN" }]\n')
    assert read_signatures(signed_pdf("unclassified"), rule).classes == ("organisation",)
    with pytest.raises(ValueError):
        SignerRule.from_toml('[[class]]\nname = "x"\nmatch = [{ attribute = "shoeSize" }]\n')


def test_incoming_per_receiving_organ_and_status() -> None:
    doc_id = "000.00.30.H56,2025/03/14,77/UBND-VP"
    events = derive(edxml_document(document_id=doc_id, receivers=("000.00.00.H56", "000.00.32.H56", "000.00.00.G22")))
    incoming = [e for e in events if e.verb == "incoming_registered"]
    assert sorted(e.unit for e in incoming) == ["38", "392"]
    assert all(e.data["received_electronically"] and not e.data["processed_on_system"] for e in incoming)
    ref = edxml.incoming_ref(doc_id, "000.00.32.H56")
    for code, processed in (("03", True), ("04", True), ("05", True), ("06", True), ("01", False)):
        [status] = derive(edxml_status(doc_id, "000.00.32.H56", code))
        assert status.data == {"document_id": ref, "received_electronically": True, "processed_on_system": processed}
        assert status.id == f"{ref}:status:{code}" and status.unit == "392"
    [refused] = derive(edxml_status(doc_id, "000.00.32.H56", "02"))
    assert refused.verb == "revoked" and refused.data["document_id"] == ref
    assert derive(edxml_status(doc_id, "000.00.32.H56", "13")) == []


def test_revoke_replace_update() -> None:
    doc_id = "000.00.30.H56,2025/03/14,77/UBND-VP"
    revoke = derive(edxml_document(document_id=doc_id, doc_type=1))
    assert {(e.verb, e.data["document_id"]) for e in revoke} == {
        ("revoked", "000.00.30.H56:2025/03/14:77/UBND-VP"),
        ("revoked", edxml.incoming_ref(doc_id, "000.00.00.H56")),
    }
    new_id = "000.00.30.H56,2025/03/15,78/UBND-VP"
    replace = derive(edxml_document(document_id=new_id, doc_type=3, replaced=doc_id))
    assert sorted((e.verb, e.data["document_id"]) for e in replace) == sorted(
        [
            ("revoked", "000.00.30.H56:2025/03/14:77/UBND-VP"),
            ("revoked", edxml.incoming_ref(doc_id, "000.00.00.H56")),
            ("outgoing_issued", "000.00.30.H56:2025/03/15:78/UBND-VP"),
            ("incoming_registered", edxml.incoming_ref(new_id, "000.00.00.H56")),
        ]
    )
    first = derive(edxml_document(document_id=doc_id, pdf=signed_pdf()))
    update = derive(
        edxml_document(document_id=doc_id, doc_type=2, pdf=signed_pdf("personal"), timestamp="2025/03/15 08:00:00")
    )
    issued = [e for e in first + update if e.verb == "outgoing_issued"]
    assert len({e.data["document_id"] for e in issued}) == 1 and len({e.id for e in issued}) == 2
    assert issued[-1].data["personal_signed"] is True
    # a resent message derives the very same ids
    assert [e.id for e in first] == [e.id for e in derive(edxml_document(document_id=doc_id, pdf=signed_pdf()))]


def test_document_ids_fit_the_contract() -> None:
    odd = "000.00.30.H56,2025/03/14,12/QĐ-UBND"  # Đ is not allowed in identifiers
    ref = edxml.document_ref(odd)
    assert ref.startswith("vb:") and ref == edxml.document_ref(odd)
    assert len(edxml.incoming_ref(odd, "000.00.00.H56")) <= 64


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (BILLION_LAUGHS, "xml_forbidden"),
        (EXTERNAL_ENTITY, "xml_forbidden"),
        (b"<edXML", "xml_malformed"),
        (b"<TONG_HOP/>", "not_edxml"),
        (edxml_status("x", "000.00.32.H56", "99"), "unknown_status"),
        (edxml_status("x", "000.00.32.H56", "06", at="17/03/2025"), "invalid_date"),
        (edxml_document(doc_type=7), "invalid"),
        (
            edxml_document()
            .replace(b"<edXML:DocumentId>", b"<edXML:X>")
            .replace(b"</edXML:DocumentId>", b"</edXML:X>"),
            "missing",
        ),
    ],
)
def test_bad_messages_say_why(body: bytes, code: str) -> None:
    with pytest.raises(RecordError) as caught:
        edxml.parse_message(body, LIMIT)
    assert caught.value.code == code
    assert not [v for v in PERSONAL_VALUES if v in str(caught.value)]


def test_attachment_limit() -> None:
    with pytest.raises(RecordError) as caught:
        edxml.parse_message(edxml_document(pdf=b"x" * 5000), 1024)
    assert caught.value.code == "too_large"
