"""Hostile input against the real connector process: never a 5xx, never a crash.

- schemathesis drives every operation of the connector's OpenAPI document (documented
  status codes, content types, response schemas, invalid data rejected);
- XML attacks (entity expansion, external entities, malformed XML, deep nesting, an
  oversized body) on both XML routes, and the same inside a claim envelope's base64 tables;
- hypothesis fuzzes DVCQG arrays: arbitrary JSON elements next to a valid one - each
  answered per record, the valid one accepted.
"""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import load_all_checks, positive_data_acceptance

from tests.support.connectors_samples import BILLION_LAUGHS, EXTERNAL_ENTITY, dossier, giamdinhhs, xml1
from tests.support.connectors_stack import Stack, connector_stack
from tests.support.servers import Servers

pytestmark = pytest.mark.integration
load_all_checks()
MAX_BODY = 256 * 1024


@pytest.fixture(scope="module")
def stack(servers: Servers, workdir: Path) -> Iterator[Stack]:
    loop = asyncio.new_event_loop()
    manager = connector_stack(
        servers,
        workdir,
        aggregator=False,
        CONNECTORS_MAX_BODY_BYTES=str(MAX_BODY),
        CONNECTORS_MAX_RECORDS="50",
        CONNECTORS_RATE_LIMIT_PER_S="100000",
        CONNECTORS_RATE_LIMIT_BURST="100000",
    )
    running = loop.run_until_complete(manager.__aenter__())
    try:
        yield running
    finally:
        loop.run_until_complete(manager.__aexit__(None, None, None))
        loop.close()
        log = running.connector.log_tail(5000)
        assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]


def post(stack: Stack, path: str, body: bytes, content_type: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {stack.key}", "content-type": content_type}
    return httpx.post(stack.url(path), content=body, headers=headers, timeout=60)


def test_openapi_conformance(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.connector.url}/openapi.json")
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            case.call_and_validate(
                base_url=stack.connector.url,
                headers={"authorization": f"Bearer {stack.key}"},
                excluded_checks=[positive_data_acceptance],
            )

        check()
        exercised.append(operation.label)
    assert {"POST /v1/dvcqg", "POST /v1/dvcqg/hoso/add", "POST /v1/edxml", "POST /v1/claims"} <= set(exercised)


DEEP = b"<TONG_HOP>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</TONG_HOP>"
ATTACKS = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": EXTERNAL_ENTITY,
    "parameter entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">%p;]><x/>',
    "malformed": b"<edXML><unclosed>",
    "not xml": b"\x00\x01\x02 binary",
    "deep nesting": DEEP,
}


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("path", ["/v1/edxml", "/v1/claims"])
def test_xml_attacks_are_refused_with_a_reason(stack: Stack, path: str, name: str) -> None:
    answer = post(stack, path, ATTACKS[name], "application/xml")
    assert answer.status_code in (413, 422), (answer.status_code, answer.text)
    if answer.status_code == 422:
        error = answer.json()["results"][0]["errors"][0]
        assert error["code"] in ("xml_forbidden", "xml_malformed", "not_edxml", "unknown_format", "missing"), error
        assert error["field"] and error["message"]


def test_attacks_inside_a_claim_envelope_spare_the_other_records(stack: Stack) -> None:
    body = giamdinhhs(
        [[("XML1", BILLION_LAUGHS)], [("XML1", EXTERNAL_ENTITY)], [("XML1", xml1("38001-H1"))], [("XML1", "!!")]]
    )
    answer = post(stack, "/v1/claims", body, "application/xml")
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["rejected", "rejected", "accepted", "rejected"]


def test_oversized_bodies(stack: Stack) -> None:
    big = b"<TONG_HOP>" + b" " * MAX_BODY + b"</TONG_HOP>"
    assert post(stack, "/v1/claims", big, "application/xml").status_code == 413
    answer = post(stack, "/v1/dvcqg/hoso/add", b"[" + b" " * MAX_BODY + b"]", "application/json")
    assert answer.status_code == 413 and answer.json()["error_code"] == "-1"
    too_many = orjson.dumps([dossier()] * 51)
    answer = post(stack, "/v1/dvcqg/hoso/update", too_many, "application/json")
    assert answer.status_code == 413 and answer.json()["error_code"] == "-1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
FIELDS = [
    "MaHoSo",
    "TrangThaiHoSo",
    "NgayTiepNhan",
    "NgayHenTra",
    "KenhThucHien",
    "DanhSachLePhi",
    "DanhSachHoSoBoSung",
    "TaiLieuNop",
    "MaTTHC",
    "DonViXuLy",
]
mutated = st.builds(lambda k, v: dossier(**{"MaHoSo": "000.20.30.H56-F", k: v}), st.sampled_from(FIELDS), json_values)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(elements=st.lists(json_values | mutated, max_size=8))
def test_dvcqg_array_fuzz(stack: Stack, elements: list[Any]) -> None:
    good = dossier(MaHoSo="000.20.30.H56-GOOD")
    body = [*elements, good]
    answer = post(stack, "/v1/dvcqg/hoso/update", orjson.dumps(body), "application/json")
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == list(range(len(body)))
    assert results[-1]["error_code"] == "0" or any(
        isinstance(e, dict) and e.get("MaHoSo") == "000.20.30.H56-GOOD" for e in elements
    ), results[-1]
    for result in results:
        assert result["error_code"] in ("0", "-1")
        if result["error_code"] == "-1":
            assert result["errors"] and all(e["field"] and e["code"] for e in result["errors"])
