"""Digital signatures inside a PDF, and whose they are (an organisation's or a person's).

pyHanko reads the PDF's embedded signatures. For each one:

- **verified**: the signature is intact - the digest of the signed byte ranges matches the
  one in the CMS signed attributes, and the CMS signature verifies against the public key
  of the embedded signer certificate - and it covers the whole revision it signs;
- **not verified**: the trust chain (that a licensed Vietnamese CA issued the certificate,
  and that it was not revoked). No root list is loaded and no OCSP/CRL request is made:
  the connector has no network access to CAs, and the KPI counts *that* documents are
  signed electronically, not the legal validity of each signature. A certificate made by
  anyone can therefore be counted; the document system that sent it is accountable for it.

Each intact signature's certificate is classified by a configurable rule
(``signature_rule.toml``): attributes of its subject, never its holder's name or numbers,
which are not copied anywhere. No I/O beyond reading the bytes given.
"""

import io
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.x509.oid import NameOID

log = structlog.get_logger(__name__)

DEFAULT_RULE = Path(__file__).with_name("signature_rule.toml")
_NAMES: dict[str, str] = {
    "uid": NameOID.USER_ID.dotted_string,
    "userid": NameOID.USER_ID.dotted_string,
    "serialnumber": NameOID.SERIAL_NUMBER.dotted_string,
    "organizationidentifier": NameOID.ORGANIZATION_IDENTIFIER.dotted_string,
    "o": NameOID.ORGANIZATION_NAME.dotted_string,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string,
    "cn": NameOID.COMMON_NAME.dotted_string,
    "title": NameOID.TITLE.dotted_string,
    "t": NameOID.TITLE.dotted_string,
    "e": NameOID.EMAIL_ADDRESS.dotted_string,
}


@dataclass(frozen=True, slots=True)
class Matcher:
    oid: str
    prefixes: tuple[str, ...]

    def matches(self, attributes: list[tuple[str, str]]) -> bool:
        for oid, value in attributes:
            if oid != self.oid:
                continue
            if not self.prefixes or value.upper().startswith(self.prefixes):
                return True
        return False


@dataclass(frozen=True, slots=True)
class SignerRule:
    """Ordered classes; the first whose matchers match a subject names it."""

    classes: tuple[tuple[str, tuple[Matcher, ...]], ...]

    @classmethod
    def from_toml(cls, content: str) -> "SignerRule":
        document = tomllib.loads(content)
        classes = []
        for entry in document.get("class", []):
            matchers = []
            for item in entry.get("match", []):
                name = str(item["attribute"])
                oid = _NAMES.get(name.lower(), name)
                if not all(part.isdigit() for part in oid.split(".")):
                    raise ValueError(f"unknown certificate attribute {name!r} in the signature rule")
                prefixes = tuple(str(p).upper() for p in item.get("prefixes", []))
                matchers.append(Matcher(oid, prefixes))
            classes.append((str(entry["name"]), tuple(matchers)))
        return cls(tuple(classes))

    def classify(self, attributes: list[tuple[str, str]]) -> str:
        for name, matchers in self.classes:
            if any(m.matches(attributes) for m in matchers):
                return name
        return "unclassified"


@cache
def load_rule(path: Path = DEFAULT_RULE) -> SignerRule:
    return SignerRule.from_toml(path.read_text(encoding="utf-8"))


def subject_attributes(certificate: x509.Certificate) -> list[tuple[str, str]]:
    """(dotted OID, value) of every subject attribute."""
    out = []
    for attribute in certificate.subject:
        value = attribute.value
        out.append((attribute.oid.dotted_string, value if isinstance(value, str) else value.decode(errors="replace")))
    return out


@dataclass(frozen=True, slots=True)
class PdfSignatures:
    """What a PDF's signatures say: the classes of its intact signatures, and how many
    signatures were not counted (broken, or not readable)."""

    classes: tuple[str, ...]
    broken: int
    readable: bool

    @property
    def agency_signed(self) -> bool:
        return "organisation" in self.classes

    @property
    def personal_signed(self) -> bool:
        return "personal" in self.classes


def _intact(signature: Any) -> bool:
    from pyhanko.sign.validation.generic_cms import validate_sig_integrity
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    intact, valid = validate_sig_integrity(
        signature.signer_info,
        signature.signer_cert,
        expected_content_type="data",
        actual_digest=signature.compute_digest(),
    )
    coverage = signature.evaluate_signature_coverage()
    return bool(intact and valid and coverage >= SignatureCoverageLevel.ENTIRE_REVISION)


def read_signatures(pdf: bytes, rule: SignerRule) -> PdfSignatures:
    """Classify the intact signatures embedded in ``pdf``. A file that is not a readable
    PDF gives no signatures (``readable`` False); it never raises."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        embedded = list(PdfFileReader(io.BytesIO(pdf), strict=False).embedded_signatures)
    except Exception as exc:  # pyHanko raises many kinds on hostile input
        log.info("attachment is not a readable PDF", error_type=type(exc).__name__)
        return PdfSignatures((), 0, False)
    classes = []
    broken = 0
    for signature in embedded:
        try:
            if not _intact(signature):
                broken += 1
                continue
            certificate = x509.load_der_x509_certificate(signature.signer_cert.dump())
            classes.append(rule.classify(subject_attributes(certificate)))
        except Exception as exc:
            log.info("signature not readable", error_type=type(exc).__name__)
            broken += 1
    return PdfSignatures(tuple(classes), broken, True)
