"""Contract tests: each format, from the samples and variations of them, through the real
connector process → the expected CloudEvents in Kafka → the expected KPI counters in
PostgreSQL (real aggregator process)."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from services.connectors import edxml
from services.connectors.adapters.mapping_store import load_mappings
from services.connectors.mappings import MappingFileError
from tests.support.connectors_pdf import signed_pdf
from tests.support.connectors_samples import (
    STARTER,
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
from tests.support.connectors_stack import Stack, connector_key, connector_stack, headers_of
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def stack(servers: Servers, workdir: Path) -> AsyncIterator[Stack]:
    async with connector_stack(servers, workdir, CONNECTORS_MAPPINGS_REFRESH_S="0.5") as running:
        yield running


def types_of(stack: Stack, sector: str, id_prefix: str) -> list[str]:
    return sorted(
        headers_of(m)["ce_type"] for m in stack.records(sector) if headers_of(m)["ce_id"].startswith(id_prefix)
    )


async def test_dvcqg_sample_add_then_update(stack: Stack) -> None:
    sample = orjson.loads(fixture("dvcqg_hoso.sample.json"))
    answer = await stack.post_json("/v1/dvcqg/hoso/add", sample)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["error_code"] == "0" and "thành công" in body["message"]
    assert [r["error_code"] for r in body["results"]] == ["0"]
    number = "000.20.30.H56-250312-00007"
    assert types_of(stack, "general", number) == [
        "vn.gov.thanhhoa.general.dossier.paid",
        "vn.gov.thanhhoa.general.dossier.received",
        "vn.gov.thanhhoa.general.dossier.resolved",
    ]
    record = next(m for m in stack.records("general") if headers_of(m)["ce_id"].startswith(f"{number}:received"))
    assert record.key() == b"380" and headers_of(record)["ce_unit"] == "380"
    assert headers_of(record)["ce_source"] == "/connectors/dvcqg/mot-cua-thanh-hoa"
    expected = {
        "dossier.received": 1,
        "dossier.received.online": 1,
        "dossier.fee_required": 1,
        "dossier.paid_online": 1,
        "dossier.digitised": 1,
        "dossier.resolved": 1,
        "dossier.resolved_on_time": 1,
        "dossier.e_result": 1,
    }
    for unit in ("380", "38"):
        await stack.counters_reach(expected, unit=unit, sector="general")
    # the same dossier again on the add URL: "already exists" (the sender retries on update)
    again = (await stack.post_json("/v1/dvcqg/hoso/add", sample)).json()
    assert again["error_code"] == "3" and "đã tồn tại" in again["message"]
    update = (await stack.post_json("/v1/dvcqg/hoso/update", sample)).json()
    assert update["error_code"] == "0"
    progress_answer = (
        await stack.post_json("/v1/dvcqg/tiendo", orjson.loads(fixture("dvcqg_tiendo.sample.json")))
    ).json()
    assert progress_answer["error_code"] == "0"
    assert len([m for m in stack.records("general") if headers_of(m)["ce_id"].startswith(number)]) == 3
    await stack.counters_reach(expected, unit="38", sector="general")


async def test_envelope_with_the_key_in_session(stack: Stack) -> None:
    body = orjson.loads(fixture("dvcqg_dongbohosomc_envelope.sample.json"))
    record = body["data"][0]
    record["MaHoSo"] = "000.20.30.H56-250312-00099"
    record["MaLinhVuc"] = "GD01"  # education
    body["session"] = stack.key
    answer = await stack.post_json("/v1/dvcqg", body, key="")
    assert answer.status_code == 200, answer.text
    assert answer.json()["error_code"] == "0"
    # no KenhThucHien in OpenCPS payloads: counted at the counter (the configured default)
    await stack.counters_reach({"dossier.received": 1, "dossier.received.online": 0}, unit="380", sector="education")
    body["session"] = "sck_000000000000_wrong"
    refused = await stack.post_json("/v1/dvcqg", body, key="")
    assert refused.status_code == 401 and refused.json()["error_code"] == "-1"
    progress_body = envelope([progress(record["MaHoSo"], "20250313100000", "9")], service="CapNhatTienDoHoSoMC")
    assert (await stack.post_json("/v1/dvcqg", progress_body)).json()["error_code"] == "0"


async def test_a_field_of_no_sector_goes_to_general(stack: Stack) -> None:
    record = dossier(MaHoSo="000.00.30.H56-250401-00001", MaLinhVuc="ZZ99", DonViXuLy="UBND huyện Cẩm Thủy")
    assert (await stack.post_json("/v1/dvcqg/hoso/update", [record])).json()["error_code"] == "0"
    await stack.counters_reach({"dossier.received": 1}, unit="390", sector="general")


async def test_bad_elements_answered_per_record_the_rest_processed(stack: Stack) -> None:
    good = dossier(
        MaHoSo="000.00.32.H56-250402-00001",
        DonViXuLy="UBND huyện Hà Trung",
        TrangThaiHoSo="processing",
        NgayKetThucXuLy="",
        NgayTra="",
    )
    batch = [
        good,
        "not an object",
        dossier(MaHoSo="000.00.32.H56-250402-00002", TrangThaiHoSo="finished"),
        dossier(MaHoSo="000.00.32.H56-250402-00003", NgayTiepNhan="12/03/2025"),
        dossier(MaHoSo="000.00.32.H56-250402-00004", DonViXuLy="Nowhere", MaHoSo_=None),
        dossier(MaHoSo="000.00.32.H56-250402-00005", NgayTiepNhan="20240101083000", DonViXuLy="UBND huyện Hà Trung"),
    ]
    batch[4]["MaHoSo"] = "999.99.99.H99-1"
    answer = await stack.post_json("/v1/dvcqg/hoso/add", batch)
    assert answer.status_code == 200
    body = answer.json()
    assert body["error_code"] == "-1"
    results = body["results"]
    assert [r["error_code"] for r in results] == ["0", "-1", "-1", "-1", "-1", "0"]
    assert results[1]["errors"][0]["code"] == "type_error"
    assert results[2]["errors"][0] == {
        "field": "TrangThaiHoSo",
        "message": results[2]["errors"][0]["message"],
        "code": "unknown_status",
    }
    assert results[3]["errors"][0]["code"] == "invalid_date" and "12/03/2025" not in answer.text
    assert results[4]["errors"][0]["code"] == "unmapped_unit"
    await stack.counters_reach({"dossier.received": 2}, unit="392", sector="general")
    not_json = await stack.client.post(stack.url("/v1/dvcqg/hoso/add"), content=b"[{", headers=stack.auth())
    assert not_json.status_code == 400 and not_json.json()["error_code"] == "-1"


async def test_edxml_documents_signatures_and_statuses(stack: Stack) -> None:
    variants = {
        "none": (),
        "personal": ("personal",),
        "organisation": ("organisation",),
        "both": ("organisation", "personal"),
    }
    ids = {}
    for number, (name, kinds) in enumerate(variants.items(), start=100):
        doc_id = f"000.00.30.H56,2025/03/14,{number}/UBND-VP"
        ids[name] = doc_id
        answer = await stack.post_xml("/v1/edxml", edxml_document(document_id=doc_id, pdf=signed_pdf(*kinds)))
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["status"] == "accepted" and answer.json()["results"][0]["events"] == 2
    outgoing = {"document.outgoing": 4, "document.outgoing.agency_signed": 2, "document.outgoing.personal_signed": 2}
    await stack.counters_reach(outgoing, unit="390", sector="general")
    incoming = {"document.incoming": 4, "document.incoming.electronic": 4, "document.incoming.on_system": 0}
    await stack.counters_reach(incoming, unit="38", sector="general")
    # the province registers two of them on its document system; the status is sent twice
    for name in ("none", "both", "both"):
        answer = await stack.post_xml("/v1/edxml", edxml_status(ids[name], "000.00.00.H56", "06"))
        assert answer.json()["accepted"] == 1
    await stack.counters_reach({**incoming, "document.incoming.on_system": 2}, unit="38", sector="general")
    # an update with a newly signed PDF replaces the flags; a resent message counts once
    update = edxml_document(
        document_id=ids["none"], doc_type=2, pdf=signed_pdf("organisation"), timestamp="2025/03/15 09:00:00"
    )
    assert (await stack.post_xml("/v1/edxml", update)).json()["accepted"] == 1
    assert (await stack.post_xml("/v1/edxml", update)).json()["accepted"] == 1
    await stack.counters_reach({**outgoing, "document.outgoing.agency_signed": 3}, unit="390", sector="general")


async def test_edxml_revoke_and_replace_do_not_double_count(stack: Stack) -> None:
    sender, receiver = "000.00.40.H56", "000.00.44.H56"  # Hậu Lộc → Nông Cống
    old = f"{sender},2025/03/14,5/UBND"
    assert (
        await stack.post_xml(
            "/v1/edxml",
            edxml_document(sender=sender, receivers=(receiver,), document_id=old, pdf=signed_pdf("personal")),
        )
    ).json()["accepted"] == 1
    await stack.counters_reach({"document.outgoing": 1}, unit="400", sector="general")
    await stack.counters_reach({"document.incoming": 1}, unit="404", sector="general")
    new = f"{sender},2025/03/15,6/UBND"
    replace = edxml_document(
        sender=sender,
        receivers=(receiver,),
        document_id=new,
        doc_type=3,
        replaced=old,
        pdf=signed_pdf("personal"),
        timestamp="2025/03/15 08:00:00",
    )
    assert (await stack.post_xml("/v1/edxml", replace)).json()["results"][0]["events"] == 4
    await stack.counters_reach(
        {"document.outgoing": 1, "document.outgoing.personal_signed": 1}, unit="400", sector="general"
    )
    await stack.counters_reach({"document.incoming": 1}, unit="404", sector="general")
    revoke = edxml_document(
        sender=sender, receivers=(receiver,), document_id=new, doc_type=1, timestamp="2025/03/16 08:00:00"
    )
    assert (await stack.post_xml("/v1/edxml", revoke)).json()["accepted"] == 1
    await stack.counters_reach({"document.outgoing": 0}, unit="400", sector="general")
    await stack.counters_reach({"document.incoming": 0}, unit="404", sector="general")


async def test_edxml_sample_and_a_bomb(stack: Stack) -> None:
    answer = await stack.post_xml("/v1/edxml", fixture("edxml_edoc_new.sample.xml"))
    assert answer.status_code == 200 and answer.json()["results"][0]["events"] == 1
    ref = edxml.document_ref("000.00.00.H56,2025/03/14,1234/UBND-KSTTHC")
    assert answer.json()["results"][0]["ref"] == ref
    # the province's own outgoing document (other tests' documents roll up to 38 too, so the
    # document's own state is what this test reads): counted once, without signatures
    # (the sample's attachment is not a signed PDF)

    async def state() -> Any:
        return await stack.fetchrow(
            "SELECT unit_code, direction, agency_signed, personal_signed, revoked_at FROM documents "
            "WHERE document_id = $1",
            ref,
        )

    row = await eventually(state, lambda r: r is not None, timeout_s=60, what="the sample's document counted")
    assert dict(row) == {
        "unit_code": "38",
        "direction": "outgoing",
        "agency_signed": False,
        "personal_signed": False,
        "revoked_at": None,
    }
    status = await stack.post_xml("/v1/edxml", fixture("edxml_status_06.sample.xml"))
    assert status.json()["results"][0] == {
        "index": 0,
        "ref": status.json()["results"][0]["ref"],
        "status": "accepted",
        "events": 0,
        "errors": [],
    }
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "bbbbbbbb">]><edXML>&b;</edXML>'
    refused = await stack.post_xml("/v1/edxml", bomb)
    assert refused.status_code == 422 and refused.json()["results"][0]["errors"][0]["code"] == "xml_forbidden"


async def test_claims_sample_and_variations(stack: Stack) -> None:
    answer = await stack.post_xml("/v1/claims", fixture("bhyt_qd130_giamdinhhs.sample.xml"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["events"] == 2
    await stack.counters_reach(
        {"visit.checked_in": 1, "visit.insured": 1, "visit.closed": 1, "visit.closed.emr": 0},
        unit="380",
        sector="health",
    )
    # the same visit as the XML1 table alone counts once; a check-in first, its claim later, once
    assert (await stack.post_xml("/v1/claims", fixture("bhyt_qd130_xml1_tonghop.sample.xml"))).json()["accepted"] == 1
    assert (await stack.post_xml("/v1/claims", checkin("38002-1", "202503130700", facility="38002"))).json()[
        "accepted"
    ] == 1
    await stack.counters_reach({"visit.checked_in": 1, "visit.closed": 0}, unit="390", sector="health")
    batch = giamdinhhs(
        [
            [("XML1", xml1("38002-1", vao="202503130730", ra="202503131100", facility="38002"))],
            [("XML1", "%%%")],
            [("XML1", xml1("38002-2", vao="13/03/2025", facility="38002"))],
        ],
        facility="38002",
    )
    answer = await stack.post_xml("/v1/claims", batch)
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "rejected", "rejected"]
    await stack.counters_reach({"visit.checked_in": 1, "visit.closed": 1}, unit="390", sector="health")
    await stack.counters_reach({"visit.checked_in": 2, "visit.closed": 2}, unit="38", sector="health")


async def test_credentials(stack: Stack) -> None:
    body = orjson.loads(fixture("dvcqg_hoso.sample.json"))
    assert (await stack.post_json("/v1/dvcqg/hoso/add", body, key="")).status_code == 401
    ingest = await connector_key(stack.dsn, kind="ingest")
    forbidden = await stack.post_json("/v1/dvcqg/hoso/add", body, key=ingest)
    assert forbidden.status_code == 403 and forbidden.json()["error_code"] == "-1"
    limited = await connector_key(stack.dsn, units=["390"])
    body[0]["MaHoSo"] = "000.20.30.H56-250312-00501"  # a dossier of unit 380
    answer = await stack.post_json("/v1/dvcqg/hoso/update", body, key=limited)
    assert answer.json()["results"][0]["errors"][0]["code"] == "forbidden_unit"
    xml = await stack.client.post(
        stack.url("/v1/claims"), content=b"{}", headers={**stack.auth(), "content-type": "application/json"}
    )
    assert xml.status_code == 415


async def test_health_endpoints(stack: Stack) -> None:
    ready = await stack.client.get(stack.url("/readyz"))
    assert ready.status_code == 200 and all(ready.json()["checks"].values())
    metrics = (await stack.client.get(stack.url("/metrics"))).text
    assert "connector_records_total" in metrics

    async def no_errors() -> str:
        return stack.connector.log_tail(400)

    log = await eventually(no_errors, lambda text: bool(text))
    assert "Traceback" not in log


async def test_mappings_are_data_reloaded_while_running(stack: Stack, tmp_path: Path) -> None:
    record = dossier(MaHoSo="999.00.01.H56-250501-00001", DonViXuLy="UBND huyện Nga Sơn")
    first = (await stack.post_json("/v1/dvcqg/hoso/update", [record])).json()
    assert first["results"][0]["errors"][0]["code"] == "unmapped_unit"
    bad = tmp_path / "agencies.csv"
    bad.write_text("agency_name,unit_code\nUBND huyện Nga Sơn,999\n", encoding="utf-8")
    good = tmp_path / "agencies-good.csv"
    starter = (STARTER / "agencies.csv").read_text(encoding="utf-8")
    good.write_text(starter + "UBND huyện Nga Sơn,401,\n", encoding="utf-8")
    conn = await asyncpg.connect(stack.dsn)
    try:
        with pytest.raises(MappingFileError, match="not in the unit registry"):
            await load_mappings(conn, "agencies", bad)
        assert await load_mappings(conn, "agencies", good) == 8
    finally:
        await conn.close()

    async def send() -> str:
        answer = await stack.post_json("/v1/dvcqg/hoso/update", [record])
        return str(answer.json()["error_code"])

    await eventually(send, lambda code: code == "0", what="the reloaded mapping is used")
    await stack.counters_reach({"dossier.received": 1}, unit="401", sector="general")
