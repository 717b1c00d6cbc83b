"""A dossier's life sent as successive full DVCQG snapshots - repeated, out of order, with
English status words, progress steps before and after - gives the same KPI counters as the
same life sent as CloudEvents by a native sector system.

Both paths run into one database: the snapshots are of dossiers handled in Cẩm Thủy (390),
the CloudEvents describe the same lives in Hà Trung (392); every counter row of one unit
(metric, sector, hour, value) must equal the other's. The CloudEvents are written by hand
from the life described, not derived by the connector's code.
"""

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.connectors_samples import dossier, progress, supplement
from tests.support.connectors_stack import Stack, connector_stack
from tests.support.kafka import fill
from tests.support.servers import Servers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

AGENCY = "UBND huyện Cẩm Thủy"  # → 390
BASE = {"NgayKetThucXuLy": "", "NgayTra": "", "DanhSachGiayToKetQua": [], "DanhSachHoSoBoSung": [], "DonViXuLy": AGENCY}
NO_FEE = {"DanhSachLePhi": [], "TaiLieuNop": [], "HoSoCoThanhPhanSoHoa": "0", "DuocThanhToanTrucTuyen": "3"}
RESULT = [{"TenGiayTo": "kq.pdf", "DuongDanTepTinKetQua": "https://dvc.example/kq.pdf", "MaGiayToKetQua": "KQ"}]


def snapshots(n: str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The snapshots (and progress steps) of five lives; dossier numbers end in ``n``."""
    d1, d2, d3, d4, d5 = (f"000.00.30.H56-250312-{n}{i}" for i in range(1, 6))
    s1 = supplement("20250312140000", "", "20250314170000", "")
    s1_done = supplement("20250312140000", "20250313080000", "20250314170000", "20250315090000")
    s2 = supplement("20250314090000", "20250314150000", "20250315090000", "20250316090000")
    life1 = [  # online, fee paid online, one supplement, e-result, on time
        {**BASE, "MaHoSo": d1, "TrangThaiHoSo": "new", "NgayHenTra": "20250314170000", **NO_FEE},
        {**BASE, "MaHoSo": d1, "TrangThaiHoSo": "5", "NgayHenTra": "20250314170000", "DanhSachHoSoBoSung": [s1]},
        {
            **BASE,
            "MaHoSo": d1,
            "TrangThaiHoSo": "processing",
            "NgayHenTra": "20250315090000",
            "DanhSachHoSoBoSung": [s1_done],
        },
        {
            **BASE,
            "MaHoSo": d1,
            "TrangThaiHoSo": "releasing",
            "NgayHenTra": "20250315090000",
            "DanhSachHoSoBoSung": [s1_done],
            "NgayKetThucXuLy": "20250314100000",
            "DanhSachGiayToKetQua": RESULT,
        },
        {
            **BASE,
            "MaHoSo": d1,
            "TrangThaiHoSo": "10",
            "NgayHenTra": "20250315090000",
            "DanhSachHoSoBoSung": [s1_done],
            "NgayKetThucXuLy": "20250314100000",
            "NgayTra": "20250314160000",
            "DanhSachGiayToKetQua": RESULT,
        },
    ]
    life2 = [  # at the counter, no fee, late
        {
            **BASE,
            **NO_FEE,
            "MaHoSo": d2,
            "KenhThucHien": "1",
            "TrangThaiHoSo": "2",
            "NgayTiepNhan": "20250312090000",
            "NgayHenTra": "20250313170000",
        },
        {
            **BASE,
            **NO_FEE,
            "MaHoSo": d2,
            "KenhThucHien": "1",
            "TrangThaiHoSo": "done",
            "NgayTiepNhan": "20250312090000",
            "NgayHenTra": "20250313170000",
            "NgayKetThucXuLy": "20250314160000",
            "NgayTra": "20250314163000",
        },
    ]
    life3 = [  # withdrawn by the applicant (its progress step says when)
        {**BASE, "MaHoSo": d3, "TrangThaiHoSo": "processing", "NgayTiepNhan": "20250312100000"},
        {**BASE, "MaHoSo": d3, "TrangThaiHoSo": "cancelled", "NgayTiepNhan": "20250312100000"},
    ]
    life4 = [  # two supplement requests: late whatever the dates
        {
            **BASE,
            "MaHoSo": d4,
            "TrangThaiHoSo": "waiting",
            "NgayTiepNhan": "20250312110000",
            "NgayHenTra": "20250314170000",
            "DanhSachHoSoBoSung": [s1],
        },
        {
            **BASE,
            "MaHoSo": d4,
            "TrangThaiHoSo": "done",
            "NgayTiepNhan": "20250312110000",
            "NgayHenTra": "20250316090000",
            "DanhSachHoSoBoSung": [s1_done, s2],
            "NgayKetThucXuLy": "20250314170000",
            "DanhSachGiayToKetQua": RESULT,
        },
    ]
    life5 = [  # registered then refused at intake: never received
        {**BASE, "MaHoSo": d5, "TrangThaiHoSo": "receiving", "NgayTiepNhan": ""},
        {**BASE, "MaHoSo": d5, "TrangThaiHoSo": "denied", "NgayTiepNhan": "", "NgayTuChoi": "20250312120000"},
    ]
    steps = [
        progress(d3, "20250312100000", "2"),
        progress(d3, "20250313100000", "cancelled"),
        progress(d1, "20250312140000", "waiting"),
    ]
    return [dossier(**s) for s in life1 + life2 + life3 + life4 + life5], steps


def cloudevents(n: str) -> list[dict[str, Any]]:
    """The same lives, as a native sector system would send them, in unit 392."""
    d1, d2, d3, d4, _ = (f"000.00.32.H56-250312-{n}{i}" for i in range(1, 6))
    out: list[dict[str, Any]] = []

    def ev(id_: str, verb: str, at: str, **data: Any) -> None:
        out.append(
            {
                "specversion": "1.0",
                "id": id_,
                "source": "/one-stop/ha-trung",
                "type": f"vn.gov.thanhhoa.general.dossier.{verb}",
                "time": at,
                "unit": "392",
                "data": data,
            }
        )

    def received(d: str, at: str, channel: str, due: str | None, fee: bool, digitised: bool) -> None:
        ev(
            f"{d}-r",
            "received",
            at,
            dossier_id=d,
            procedure_code="1.000894.000.00.00.H56",
            channel=channel,
            due_at=due,
            fee_required=fee,
            digitised=digitised,
            reused_data=False,
        )

    received(d1, "2025-03-12T08:30:15+07:00", "online", "2025-03-14T17:00:00+07:00", True, True)
    ev(f"{d1}-p", "paid", "2025-03-12T08:30:15+07:00", dossier_id=d1, online=True)
    ev(f"{d1}-s1", "supplement_requested", "2025-03-12T14:00:00+07:00", dossier_id=d1)
    ev(f"{d1}-s1r", "supplement_resumed", "2025-03-13T08:00:00+07:00", dossier_id=d1)
    ev(f"{d1}-z", "resolved", "2025-03-14T10:00:00+07:00", dossier_id=d1, e_result=True)
    received(d2, "2025-03-12T09:00:00+07:00", "counter", "2025-03-13T17:00:00+07:00", False, False)
    ev(f"{d2}-z", "resolved", "2025-03-14T16:00:00+07:00", dossier_id=d2, e_result=False)
    received(d3, "2025-03-12T10:00:00+07:00", "online", "2025-03-14T17:00:00+07:00", True, True)
    ev(f"{d3}-p", "paid", "2025-03-12T10:00:00+07:00", dossier_id=d3, online=True)
    ev(f"{d3}-w", "withdrawn", "2025-03-13T10:00:00+07:00", dossier_id=d3, reason="withdrawn")
    received(d4, "2025-03-12T11:00:00+07:00", "online", "2025-03-14T17:00:00+07:00", True, True)
    ev(f"{d4}-p", "paid", "2025-03-12T11:00:00+07:00", dossier_id=d4, online=True)
    ev(f"{d4}-s1", "supplement_requested", "2025-03-12T14:00:00+07:00", dossier_id=d4)
    ev(f"{d4}-s1r", "supplement_resumed", "2025-03-13T08:00:00+07:00", dossier_id=d4)
    ev(f"{d4}-s2", "supplement_requested", "2025-03-14T09:00:00+07:00", dossier_id=d4)
    ev(f"{d4}-s2r", "supplement_resumed", "2025-03-14T15:00:00+07:00", dossier_id=d4)
    ev(f"{d4}-z", "resolved", "2025-03-14T17:00:00+07:00", dossier_id=d4, e_result=True)
    return out


@pytest.fixture(scope="module")
async def stack(servers: Servers, workdir: Path) -> AsyncIterator[Stack]:
    async with connector_stack(servers, workdir) as running:
        yield running


async def rows(dsn: str, unit: str) -> set[tuple[str, str, str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(
            "SELECT metric, sector, bucket::text AS bucket, value FROM counters_hourly WHERE unit_code = $1", unit
        )
        return {(r["metric"], r["sector"], r["bucket"], r["value"]) for r in found}
    finally:
        await conn.close()


async def test_snapshots_in_any_order_equal_cloudevents(stack: Stack) -> None:
    records, steps = snapshots("7")
    rng = random.Random(2025)
    sends: list[tuple[str, list[dict[str, Any]]]] = [("/v1/dvcqg/hoso/update", [r]) for r in records]
    sends += [("/v1/dvcqg/hoso/update", [r]) for r in rng.sample(records, 5)]  # repeats
    sends += [("/v1/dvcqg/tiendo", [s]) for s in steps]
    rng.shuffle(sends)
    sends.append(("/v1/dvcqg/hoso/update", records))  # and everything again in one batch
    for path, body in sends:
        answer = await stack.post_json(path, body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["error_code"] == "0", answer.text
    await asyncio.to_thread(fill, stack.bootstrap, stack.prefix, cloudevents("7"))
    expected_totals = {"dossier.received": 4, "dossier.resolved": 3, "dossier.withdrawn": 1}
    await stack.counters_reach(expected_totals, unit="392", sector="general")
    await stack.counters_reach(expected_totals, unit="390", sector="general")
    await stack.counters_reach(
        {
            "dossier.resolved_on_time": 1,
            "dossier.resolved_late": 2,
            "dossier.e_result": 2,
            "dossier.received.online": 3,
            "dossier.paid_online": 3,
        },
        unit="390",
        sector="general",
    )

    async def both() -> tuple[set[Any], set[Any]]:
        return await rows(stack.dsn, "390"), await rows(stack.dsn, "392")

    via_snapshots, _via_events = await eventually(
        both, lambda pair: pair[0] == pair[1], timeout_s=30, what="the two paths agree"
    )
    assert len(via_snapshots) > 10
