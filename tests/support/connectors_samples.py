"""Format samples (copies in tests/fixtures/connectors) and variations built from them.

Every variation keeps the samples' personal fields filled with recognisable values
(:data:`PERSONAL_VALUES`), so a test can prove none of them leaves the connector.
"""

import base64
import copy
import re
from pathlib import Path
from typing import Any

import orjson

from services.connectors.mappings import KINDS, Mappings, parse_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "connectors"
STARTER = Path(__file__).resolve().parents[2] / "infra" / "reference" / "connectors"

# Personal values carried by the samples and the variations (names, ID and card numbers,
# birth dates, phones, addresses, e-mails, abstracts, officers): none may be stored,
# published, logged or answered.
PERSONAL_VALUES: tuple[str, ...] = (
    "Lê Văn An",
    "038090001234",
    "0912345678",
    "Đăng ký khai sinh cho con Lê Minh B",
    "Nguyễn Thị Hoa",
    "Công chức Tư pháp - Hộ tịch",
    "GD4383820000001",
    "199001150000",
    "Phường Hạc Thành, tỉnh Thanh Hóa",
    "BN0000123",
    "Nguyễn Văn A",
    "Trần Thị B",
    "84900000000",
    "vanthu@example.thanhhoa.gov.vn",
    "Phạm Văn C",
    "84900000001",
    "congdan@example.vn",
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def starter_mappings() -> Mappings:
    rows = []
    for kind in KINDS:
        rows += parse_rows(kind, (STARTER / f"{kind}.csv").read_text(encoding="utf-8"))
    return Mappings.from_rows(rows)


def dossier(**changes: Any) -> dict[str, Any]:
    """The DVCQG dossier sample with fields replaced (``None`` removes a field)."""
    record: dict[str, Any] = copy.deepcopy(orjson.loads(fixture("dvcqg_hoso.sample.json"))[0])
    record["Email"] = "congdan@example.vn"
    for name, value in changes.items():
        if value is None:
            record.pop(name, None)
        else:
            record[name] = value
    return record


def supplement(requested: str, resumed: str = "", due_before: str = "", due_after: str = "") -> dict[str, str]:
    return {
        "HoSoBoSungId": "",
        "NguoiYeuCauBoSung": "Nguyễn Thị Hoa",
        "NoiDungBoSung": "Bổ sung giấy tờ của Lê Văn An",
        "NgayBoSung": requested,
        "NguoiTiepNhanBoSung": "Nguyễn Thị Hoa",
        "NgayTiepNhanBoSung": resumed,
        "NgayHenTraTruoc": due_before,
        "NgayHenTraMoi": due_after,
    }


def progress(number: str, at: str, status: str) -> dict[str, str]:
    return {
        "MaHoSo": number,
        "NguoiXuLy": "Nguyễn Thị Hoa",
        "ChucDanh": "Công chức Tư pháp - Hộ tịch",
        "ThoiDiemXuLy": at,
        "PhongBanXuLy": "",
        "NoiDungXuLy": "Xử lý hồ sơ",
        "TrangThai": status,
        "NgayBatDau": "",
        "NgayKetThucTheoQuyDinh": "",
    }


def envelope(
    records: list[dict[str, Any]], service: str = "DongBoHoSoMC", updating: str = "False", **extra: Any
) -> dict[str, Any]:
    return {
        "session": "",
        "madonvi": "000.00.00.H56",
        "service": service,
        "isUpdating": updating,
        "data": records,
        **extra,
    }


_EDXML_NEW = fixture("edxml_edoc_new.sample.xml").decode()
_EDXML_STATUS = fixture("edxml_status_06.sample.xml").decode()


def edxml_document(
    *,
    sender: str = "000.00.30.H56",
    receivers: tuple[str, ...] = ("000.00.00.H56",),
    document_id: str | None = None,
    doc_type: int = 0,
    pdf: bytes | None = None,
    replaced: str | None = None,
    timestamp: str = "2025/03/14 10:20:00",
) -> bytes:
    """The edoc_new sample, sent by ``sender`` to ``receivers``, with ``pdf`` attached."""
    text = _EDXML_NEW
    document_id = document_id or f"{sender},2025/03/14,1234/UBND-VP"
    text = text.replace("000.00.00.H56,2025/03/14,1234/UBND-KSTTHC", document_id)
    text = text.replace("<edXML:OrganId>000.00.00.H56</edXML:OrganId>", f"<edXML:OrganId>{sender}</edXML:OrganId>")
    to_block = re.search(r"<edXML:To>.*?</edXML:To>", text, re.S)
    assert to_block is not None
    blocks = "".join(to_block.group(0).replace("000.00.00.G22", organ) for organ in receivers)
    text = text.replace(to_block.group(0), blocks)
    text = text.replace("<edXML:BussinessDocType>0<", f"<edXML:BussinessDocType>{doc_type}<")
    text = text.replace("2025/03/14 10:20:00", timestamp)
    if replaced is not None:
        info = (
            "<edXML:ReplacementInfoList><edXML:ReplacementInfo>"
            f"<edXML:DocumentId>{replaced}</edXML:DocumentId>"
            "<edXML:OrganIdList>"
            + "".join(f"<edXML:OrganId>{o}</edXML:OrganId>" for o in receivers)
            + "</edXML:OrganIdList>"
            "</edXML:ReplacementInfo></edXML:ReplacementInfoList></edXML:Bussiness>"
        )
        text = text.replace("</edXML:Bussiness>", info)
    if pdf is not None:
        encoded = base64.b64encode(pdf).decode()
        text = re.sub(
            r"(<edXML:ContentTransferEncoded[^>]*>)[^<]*(<)", lambda m: m.group(1) + encoded + m.group(2), text
        )
    return text.encode()


def edxml_status(document_id: str, responder: str, code: str, at: str = "2025/03/17 15:40:12") -> bytes:
    text = _EDXML_STATUS.replace("000.00.00.H56,2025/03/14,1234/UBND-KSTTHC", document_id)
    text = text.replace("<edXML:OrganId>000.00.00.G22</edXML:OrganId>", f"<edXML:OrganId>{responder}</edXML:OrganId>")
    text = text.replace("<edXML:StatusCode>06<", f"<edXML:StatusCode>{code}<")
    return text.replace("2025/03/17 15:40:12", at).encode()


_XML1 = re.sub(rb"<!--.*?-->\s*", b"", fixture("bhyt_qd130_xml1_tonghop.sample.xml"), flags=re.S)


def xml1(
    ma_lk: str = "38001-2503120042",
    vao: str = "202503120815",
    ra: str = "202503121030",
    loai: str = "01",
    facility: str = "38001",
) -> bytes:
    text = _XML1.decode()
    for tag, value in (
        ("MA_LK", ma_lk),
        ("NGAY_VAO", vao),
        ("NGAY_RA", ra),
        ("MA_LOAI_KCB", loai),
        ("MA_CSKCB", facility),
    ):
        text = re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", text)
    return text.encode()


def checkin(ma_lk: str, vao: str, facility: str = "38001", loai: str = "01") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<CHECKIN>'
        f"<MA_LK>{ma_lk}</MA_LK><STT>1</STT><MA_BN>BN0000123</MA_BN><HO_TEN>Lê Văn An</HO_TEN>"
        "<SO_CCCD>038090001234</SO_CCCD><NGAY_SINH>199001150000</NGAY_SINH><MA_THE_BHYT>GD4383820000001</MA_THE_BHYT>"
        f"<MA_LOAI_KCB>{loai}</MA_LOAI_KCB><NGAY_VAO>{vao}</NGAY_VAO><MA_CSKCB>{facility}</MA_CSKCB>"
        "<DIEN_THOAI>0912345678</DIEN_THOAI></CHECKIN>"
    ).encode()


def giamdinhhs(hosos: list[list[tuple[str, bytes]]], facility: str = "38001") -> bytes:
    """A GIAMDINHHS envelope; each HOSO a list of (LOAIHOSO, table XML) - or raw base64 text
    when the table is given as ``str``."""
    parts = []
    for files in hosos:
        body = "".join(
            f"<FILEHOSO><LOAIHOSO>{kind}</LOAIHOSO><NOIDUNGFILE>"
            f"{table if isinstance(table, str) else base64.b64encode(table).decode()}</NOIDUNGFILE></FILEHOSO>"
            for kind, table in files
        )
        parts.append(f"<HOSO>{body}</HOSO>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<GIAMDINHHS><THONGTINDONVI>'
        f"<MACSKCB>{facility}</MACSKCB></THONGTINDONVI><THONGTINHOSO><NGAYLAP>20250312</NGAYLAP>"
        f"<SOLUONGHOSO>{len(hosos)}</SOLUONGHOSO><DANHSACHHOSO>{''.join(parts)}</DANHSACHHOSO>"
        "</THONGTINHOSO><CHUKYDONVI /></GIAMDINHHS>"
    ).encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>\n<TONG_HOP><MA_LK>&lol3;</MA_LK></TONG_HOP>'
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    b"<TONG_HOP><MA_LK>&xxe;</MA_LK><NGAY_VAO>202503120815</NGAY_VAO></TONG_HOP>"
)
