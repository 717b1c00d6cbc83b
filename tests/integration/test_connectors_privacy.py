"""Personal data never passes the connector: every format is sent with names, ID and card
numbers, birth dates, addresses, phones, e-mails, abstracts and officers' names filled in
(valid records and invalid ones), then every answer, every record of every topic, every row
of every table and every log line of the connector and the aggregator is searched for them."""

import asyncio
from pathlib import Path

import asyncpg
import orjson
import pytest

from tests.support.connectors_pdf import ORG_TAX_CODE, PERSON_ID, PERSON_NAME, signed_pdf
from tests.support.connectors_samples import (
    PERSONAL_VALUES,
    checkin,
    dossier,
    edxml_document,
    edxml_status,
    envelope,
    fixture,
    giamdinhhs,
    progress,
    xml1,
)
from tests.support.connectors_stack import connector_stack
from tests.support.servers import Servers

pytestmark = pytest.mark.integration

SECRETS = (*PERSONAL_VALUES, PERSON_NAME, PERSON_ID, ORG_TAX_CODE)


def leaks(text: str) -> list[str]:
    return [value for value in SECRETS if value in text]


async def table_dump(dsn: str) -> str:
    """Every row of every table of the database, as text."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = [
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        parts = []
        for table in tables:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')
            parts += [r["row"] for r in rows]
        return "\n".join(parts)
    finally:
        await conn.close()


async def test_no_personal_data_in_answers_records_rows_or_logs(servers: Servers, workdir: Path) -> None:
    async with connector_stack(servers, workdir, LOG_LEVEL="DEBUG") as stack:
        answers = []
        number = "000.20.30.H56-250312-00007"
        sample = orjson.loads(fixture("dvcqg_hoso.sample.json"))
        bad_dates = dossier(MaHoSo="000.20.30.H56-1", NgayTiepNhan="0912345678", NgayHenTra="038090001234")
        bad_status = dossier(MaHoSo="000.20.30.H56-2", TrangThaiHoSo="Lê Văn An")
        bad_fee = dossier(MaHoSo="000.20.30.H56-3", DanhSachLePhi=[{"Gia": "Phường Hạc Thành, tỉnh Thanh Hóa"}])
        answers.append(await stack.post_json("/v1/dvcqg/hoso/add", [*sample, bad_dates, bad_status, bad_fee]))
        env = orjson.loads(fixture("dvcqg_dongbohosomc_envelope.sample.json"))
        env["data"][0]["MaHoSo"] = "000.20.30.H56-250312-00008"
        env["data"][0]["SoDienThoai"] = "0912345678"
        answers.append(await stack.post_json("/v1/dvcqg", env))
        steps = [*orjson.loads(fixture("dvcqg_tiendo.sample.json")), progress(number, "Nguyễn Thị Hoa", "4")]
        answers.append(await stack.post_json("/v1/dvcqg/tiendo", steps))
        answers.append(await stack.post_json("/v1/dvcqg", envelope(steps, service="CapNhatTienDoHoSoMC")))
        doc_id = "000.00.30.H56,2025/03/14,9/UBND-VP"
        answers.append(
            await stack.post_xml(
                "/v1/edxml", edxml_document(document_id=doc_id, pdf=signed_pdf("organisation", "personal"))
            )
        )
        answers.append(await stack.post_xml("/v1/edxml", edxml_status(doc_id, "000.00.00.H56", "05")))
        answers.append(await stack.post_xml("/v1/edxml", fixture("edxml_edoc_new.sample.xml")))
        answers.append(await stack.post_xml("/v1/edxml", edxml_status(doc_id, "000.00.00.H56", "0912345678")))
        answers.append(await stack.post_xml("/v1/claims", fixture("bhyt_qd130_giamdinhhs.sample.xml")))
        answers.append(
            await stack.post_xml(
                "/v1/claims",
                giamdinhhs(
                    [
                        [("XML1", xml1("38001-9")), ("CHECKIN", checkin("38001-9", "202503120700"))],
                        [("XML1", xml1("38001-10", vao="199001150000x"))],
                    ]
                ),
            )
        )
        answers.append(await stack.post_xml("/v1/claims", checkin("38001-11", "202503120710")))
        for answer in answers:
            assert answer.status_code in (200, 422), answer.text
            assert not leaks(answer.text), (answer.request.url, leaks(answer.text))
        # what was accepted did reach the broker and the aggregator
        await stack.counters_reach({"dossier.received": 2}, unit="380", sector=None)
        await stack.counters_reach({"visit.checked_in": 3}, unit="380", sector="health")
        await stack.counters_reach(
            {"document.outgoing": 1, "document.outgoing.personal_signed": 1}, unit="390", sector="general"
        )
        records = await asyncio.to_thread(stack.records)
        assert len(records) >= 10
        for record in records:
            text = (record.key() or b"").decode() + (record.value() or b"").decode()
            text += "".join(f"{k}={v.decode()}" for k, v in record.headers() or [])
            assert not leaks(text), leaks(text)
        dump = await table_dump(stack.dsn)
        assert number in dump and "connector_dossiers" not in leaks(dump)
        assert not leaks(dump), leaks(dump)
    for process in (stack.connector, stack.aggregator):
        assert process is not None
        log = process.log_path.read_text(errors="replace")
        assert "dvcqg records" in log or process is stack.aggregator
        assert not leaks(log), (process.module, leaks(log))
