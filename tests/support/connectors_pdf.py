"""PDFs signed at test time: a tiny CA and signer certificates made with ``cryptography``,
signatures embedded with pyHanko - the way a document system signs an outgoing document
(an organisation's certificate, a leader's personal one, both, or none)."""

import asyncio
import concurrent.futures
import datetime as dt
import io
from dataclasses import dataclass
from functools import cache

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

# Personal values a real certificate carries; the tests check none of them leaves the connector.
PERSON_NAME = "Nguyễn Văn Lãnh Đạo"
PERSON_ID = "038090009876"
ORG_TAX_CODE = "2800123456"


@dataclass(frozen=True)
class Identity:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(*attributes: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: "Identity | None") -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer.key if issuer else key, hashes.SHA256())


@cache
def authority() -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name((NameOID.COMMON_NAME, "Test CA (connectors)"), (NameOID.COUNTRY_NAME, "VN"))
    return Identity(_issue(name, key, None), key)


@cache
def identity(kind: str) -> Identity:
    """``personal`` (UID=CCCD:…, a title), ``organisation`` (UID=MST:…, O), ``unclassified``."""
    subjects = {
        "personal": _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.USER_ID, f"CCCD:{PERSON_ID}"),
            (NameOID.TITLE, "Chủ tịch"),
            (NameOID.COMMON_NAME, PERSON_NAME),
        ),
        "organisation": _name(
            (NameOID.COUNTRY_NAME, "VN"),
            (NameOID.USER_ID, f"MST:{ORG_TAX_CODE}"),
            (NameOID.ORGANIZATION_NAME, "UBND huyện Cẩm Thủy"),
            (NameOID.COMMON_NAME, "UBND huyện Cẩm Thủy"),
        ),
        "unclassified": _name((NameOID.COUNTRY_NAME, "VN"), (NameOID.COMMON_NAME, "Máy chủ văn thư")),
    }
    key = ec.generate_private_key(ec.SECP256R1())
    return Identity(_issue(subjects[kind], key, authority()), key)


def blank_pdf() -> bytes:
    writer = PdfFileWriter()
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 200, 200)]),
            generic.NameObject("/Resources"): generic.DictionaryObject(),
        }
    )
    writer.insert_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _signer(who: Identity) -> signers.SimpleSigner:
    der = who.certificate.public_bytes(serialization.Encoding.DER)
    key = who.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ca = asn1_x509.Certificate.load(authority().certificate.public_bytes(serialization.Encoding.DER))
    return signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(der),
        signing_key=asn1_keys.PrivateKeyInfo.load(key),
        cert_registry=SimpleCertificateStore.from_certs([ca]),
    )


def signed_pdf(*kinds: str) -> bytes:
    """A one-page PDF signed in turn by each kind of identity (none: unsigned). pyHanko signs
    with asyncio.run, so inside a running event loop the signing runs on a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _sign(kinds)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(_sign, kinds).result()


def _sign(kinds: tuple[str, ...]) -> bytes:
    pdf = blank_pdf()
    for number, kind in enumerate(kinds, start=1):
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        meta = signers.PdfSignatureMetadata(field_name=f"Signature{number}")
        pdf = signers.sign_pdf(writer, meta, signer=_signer(identity(kind))).getvalue()
    return pdf


def tampered(pdf: bytes) -> bytes:
    """The signed bytes changed after signing: the signature no longer verifies."""
    index = pdf.index(b"/MediaBox")
    return pdf[:index] + b"/MediaBoy" + pdf[index + len(b"/MediaBox") :]
