"""The operators' dashboard in headless Debian chromium against `make run`'s stack.

- the page signs in with the province key from dev-credentials.json (kept in sessionStorage,
  never in a URL), anchors its periods on the server's clock and loads every view;
- by default it ranks and scores the communes of the period's last day (today's 166 communes
  and wards, level=commune); the ranking (incoming_electronic_rate), the composite score, the
  overview tiles, the daily chart, overdue dossiers and projects show exactly the API's numbers
  and bases for the same period and day - rounded the way the page rounds them - in the API's
  unit order; "by former district" shows the API's level=former_district ranking;
- the map: chromium renders one shape per commune of /v1/map/communes (166), each a focusable
  button with an accessible name; every commune is drawn in the colour of its API status (and,
  coloured by value, of its value class), the legend counts them; focus shows a ring and the
  commune's name and value; a click (or Enter) opens the commune's scorecard with the API's
  values; for a period before 1 July 2025 the map colours each commune by its former district
  and says so, and a commune's scorecard there says its values are restated;
- the CSV export downloads the API's CSV through a Blob URL;
- a wrong key shows the API's problem detail; "Sign out" clears the key;
- no console error, no page error, nothing blocked by the Content-Security-Policy;
- screenshots: artifacts/dashboard.png (the page) and artifacts/dashboard-map.png (the map).

The simulator is paused (SIGSTOP) once its history is in and the aggregator has counted every
accepted event, so numbers hold still while page and API are compared. Dossier KPIs still
move with the clock (an open dossier passing its due time), so each comparison reads the API
before and after the page and retries when the two API reads differ.
"""

import contextlib
import csv
import datetime as dt
import io
import json
import math
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from infra.processes import stop
from tests.e2e.test_stack import ROOT, Stack, histories_sent
from tests.support.waiting import eventually_sync

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts"
KPI = "incoming_electronic_rate"
KEY_STORAGE = "thanhhoa.kpi.operatorKey"
TIMEOUT_MS = 60_000
REFORM = "2025-07-01"  # the 166 communes of the map begin; the districts end the day before
SPLIT_COMMUNE = "14758"  # Phường Hàm Rồng: formed partly from a split commune (Đông Thọ)
# chromium logs every failed fetch as a console error; a 404 from /v1/alerts hides the panel
ALERTS_404 = ("Failed to load resource: the server responded with a status of 404", "/v1/alerts?")

# ---- the page's rounding, labels and colours (static/format.js, static/style.css) -------------

MINUS = "\u2212"
DIGITS = {"%": 1, "hours": 1, "per 100 000": 1, "points": 1}
UNITS_VI = {"hours": "giờ", "projects": "dự án", "minutes": "phút", "per 100 000": "ca/100.000 dân",
            "boardings": "lượt", "entries": "lượt", "loans": "lượt", "points": "điểm"}  # fmt: skip
STATUS_VI = {
    "green": "Đạt",
    "amber": "Cần chú ý",
    "red": "Chưa đạt",
    "no_data": "Không có dữ liệu",
    "no_target": "Chưa đặt mục tiêu",
}
STATUS_FILL = {
    "green": "rgb(63, 155, 98)",
    "amber": "rgb(242, 181, 58)",
    "red": "rgb(184, 50, 42)",
    "no_target": "rgb(141, 139, 196)",
    "no_data": 'url("#map-hatch")',
}
PALETTE = ["rgb(199, 233, 180)", "rgb(127, 205, 187)", "rgb(65, 182, 196)",
           "rgb(29, 145, 192)", "rgb(34, 94, 168)", "rgb(12, 44, 132)"]  # fmt: skip


def fmt(value: float | None, digits: int = 1, *, sign: bool = False) -> str:
    """What formatNumber() shows: Number.toFixed rounds the exact binary value half away from
    zero; '.' groups thousands, ',' is the decimal mark, U+2212 the minus."""
    if value is None:
        return "—"
    q = Decimal(abs(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    whole, _, frac = f"{q:f}".partition(".")
    body = f"{int(whole):,}".replace(",", ".") + (f",{frac}" if frac else "")
    if q == 0:
        return body
    if value < 0:
        return MINUS + body
    return f"+{body}" if sign else body


def digits(unit: str) -> int:
    return DIGITS.get(unit, 0)


def fmt_value(value: float | None, unit: str) -> str:
    """formatValue(): "97,3%", "48,2 giờ", "—"."""
    text = fmt(value, digits(unit))
    if text == "—":
        return text
    return f"{text}%" if unit == "%" else f"{text} {UNITS_VI.get(unit, unit)}"


def value_classes(values: list[float | None]) -> tuple[list[float], int] | None:
    """The map's value classes (map.js valueClasses): equal "nice" steps from below the least
    value to the greatest, at most 6."""
    vs = [v for v in values if v is not None]
    if not vs:
        return None
    low, high = min(vs), max(vs)
    if low == high:
        return [low, high], 1
    raw = (high - low) / 5
    mag = 10 ** math.floor(math.log10(raw))
    norm = raw / mag
    step = next(n for n in (1, 2, 2.5, 5, 10) if norm <= n) * mag
    lo = math.floor(low / step) * step
    n = max(1, math.ceil((high - lo) / step))
    return [float(f"{lo + i * step:.12g}") for i in range(n + 1)], n


def class_fill(classes: tuple[list[float], int] | None, value: float | None) -> tuple[str, str]:
    """(legend bucket, fill) of a value: its class's palette colour, spread over the 6."""
    if classes is None or value is None:
        return "no_data", STATUS_FILL["no_data"]
    bounds, n = classes
    i = 0
    while i + 1 < n and value >= bounds[i + 1]:
        i += 1
    index = 3 if n == 1 else math.floor(i * 5 / (n - 1) + 0.5)
    return f"c{i}", PALETTE[index]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian chromium is not installed at {CHROMIUM}: run `apt-get install -y chromium` "
            "(as root) - Playwright's own browser download is not used",
            pytrace=False,
        )


# ---- the stack ---------------------------------------------------------------------------------


@dataclass
class Live:
    stack: Stack
    base: str
    key: str

    def get(self, path: str, params: dict[str, Any] | None = None, accept: str = "application/json") -> httpx.Response:
        return httpx.get(
            f"{self.base}{path}",
            params=params,
            timeout=60,
            headers={"authorization": f"Bearer {self.key}", "accept": accept},
        )

    def json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        answer = self.get(path, params)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def map_units(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.json("/v1/units", {"level": "commune", "as_of": REFORM})["items"]
        return items


def wait(stack: Stack, probe: Any, until: Any, what: str, timeout_s: float = 90) -> Any:
    try:
        return eventually_sync(probe, until, timeout_s=timeout_s, every_s=0.25, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- stack log ---\n{stack.log()}") from None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("dashboard") / "smartcity"
    data.mkdir()
    stack = Stack(data)  # its simulator sends the last hours of history, then live events
    simulator: psutil.Process | None = None
    try:
        wait(stack, stack.state, lambda s: "kpi_api" in s.get("services", {}), "stack state")
        wait(stack, lambda: stack.ready("kpi_api"), lambda code: code == 200, "KPI API ready")
        key = json.loads((data / "dev-credentials.json").read_text())["operator"]["province"]
        run = Live(stack, f"http://127.0.0.1:{stack.ports['kpi_api']}", key)
        wait(stack, lambda: histories_sent(data), bool, "the simulator's history is sent", timeout_s=300)
        # hold the numbers still: pause the simulator, then wait until the aggregator has
        # committed every event the ingest services accepted
        simulator = psutil.Process(stack.state()["services"]["simulator"]["pid"])
        simulator.suspend()
        seen: list[tuple[float, float]] = []

        def drained() -> bool:
            seen.append(stack.drained())
            return len(seen) >= 2 and seen[-1] == seen[-2] and seen[-1][0] == seen[-1][1] > 0

        wait(stack, drained, bool, "the aggregator has counted every accepted event", timeout_s=180)
        yield run
    finally:
        if simulator is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                simulator.resume()
        stop(stack.proc, timeout_s=15, sig=signal.SIGINT)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # launch() gives every browser a new, empty temporary profile (Playwright refuses
        # --user-data-dir in args and makes its own)
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Watch:
    """Console messages, page errors, CSP violations and request URLs of one page."""

    CSP_HOOK = """
        window.__csp = [];
        document.addEventListener('securitypolicyviolation', (e) => {
          const where = `${e.sourceFile}:${e.lineNumber}`;
          window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${where}`);
        });
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[tuple[str, str, str]] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        page.add_init_script(self.CSP_HOOK)
        page.on("console", lambda m: self.console.append((m.type, m.text, m.location.get("url", ""))))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.urls.append(r.url))

    def problems(self, allowed: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """Console errors, and anything mentioning the CSP, except allowed (text, path) pairs."""
        out = []
        for kind, text, url in self.console:
            csp = "Content Security Policy" in text or "Content-Security-Policy" in text
            parts = urlsplit(url)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            expected = any(text.startswith(t) and target.startswith(u) for t, u in allowed)
            if csp or (kind == "error" and not expected):
                out.append((kind, text, url))
        return out

    def csp_violations(self) -> list[str]:
        return list(self.page.evaluate("window.__csp || []"))

    def assert_clean(self, live: Live, extra: list[tuple[str, str]] | None = None) -> None:
        allowed = [*(extra or []), ALERTS_404] if live.get("/v1/alerts").status_code == 404 else extra or []
        assert self.errors == []
        assert self.problems(allowed) == []
        assert self.csp_violations() == []
        assert not [u for u in self.urls if live.key in u], "the key travels in the Authorization header only"


def new_page(browser: Any) -> tuple[Any, Any, Watch]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True, locale="vi-VN")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page, Watch(page)


def sign_in(page: Any, live: Live) -> None:
    page.goto(f"{live.base}/")
    page.fill("[data-testid=key-input]", live.key)
    page.click("[data-testid=key-submit]")
    page.wait_for_selector("main[data-state=ready]")


READY_AFTER = """(g) => {
  const main = document.querySelector('main');
  return Number(main.dataset.generation) > g && main.dataset.state === 'ready';
}"""


def generation(page: Any) -> int:
    return int(page.evaluate("Number(document.querySelector('main').dataset.generation || 0)"))


def reload_with(page: Any, action: Callable[[], Any]) -> None:
    """Do something that reloads views (a new generation), and wait until all are in."""
    before = generation(page)
    action()
    page.wait_for_function(READY_AFTER, arg=before)


def period_of(page: Any, testid: str = "period-toolbar") -> dict[str, str]:
    """The from/to (and as_of) a panel or the toolbar carries as data attributes."""
    data = page.evaluate(f"({{...document.querySelector('[data-testid={testid}]').dataset}})")
    out = {"from": data["from"], "to": data["to"]}
    if "asOf" in data:
        out["as_of"] = data["asOf"]
    return out


def select_kpi(page: Any, kpi: str) -> None:
    page.select_option("[data-testid=kpi-select]", kpi)
    for panel in ("ranking", "series", "map"):
        page.wait_for_selector(f"[data-testid={panel}][data-kpi={kpi}][data-state=ready]")
    page.wait_for_selector("main[data-state=ready]")


def stable(read_api: Callable[[], Any], read_page: Callable[[], Any]) -> tuple[Any, Any]:
    """(page, API) read between two equal API answers."""
    for _attempt in range(8):
        before = read_api()
        shown = read_page()
        if read_api() == before:
            return shown, before
    pytest.fail("the API's numbers kept changing while the page was read")


# ---- what the page shows, and what it should show -------------------------------------------

READ_PAGE = """() => {
  const text = (el) => (el ? el.textContent.trim() : null);
  const q = (root, id) => root.querySelector(`[data-testid="${id}"]`);
  const change = (el) => {
    const value = el && el.querySelector('.change-value');
    return value ? text(value) : '—';
  };
  const toolbar = document.querySelector('[data-testid=period-toolbar]');
  return {
    period: { from: toolbar.dataset.from, to: toolbar.dataset.to, as_of: toolbar.dataset.asOf },
    panels: [...document.querySelectorAll('main [data-from]')].map(
      (p) => [p.dataset.testid, p.dataset.from, p.dataset.to]),
    ranking: [...document.querySelectorAll('[data-testid=ranking-row]')].map((tr) => ({
      unit: tr.dataset.unit, key: tr.dataset.key, rank: text(q(tr, 'ranking-rank')),
      name: text(q(tr, 'ranking-unit')), value: text(q(tr, 'ranking-value')),
      status: q(tr, 'ranking-status').dataset.status, status_text: text(q(tr, 'ranking-status')),
      previous: text(q(tr, 'ranking-previous')), change: change(q(tr, 'ranking-change')),
      basis: tr.dataset.basis, mark: q(tr, 'ranking-unit-basis')?.dataset.basis || 'observed',
    })),
    score: [...document.querySelectorAll('[data-testid=score-row]')].map((tr) => ({
      unit: tr.dataset.unit, key: tr.dataset.key, rank: text(q(tr, 'score-rank')),
      name: text(q(tr, 'score-unit')), score: text(q(tr, 'score-value')),
      points: text(q(tr, 'score-points')), basis: tr.dataset.basis,
      groups: Object.fromEntries([...tr.querySelectorAll('[data-testid^="score-group-"]')].map(
        (td) => [td.dataset.testid.replace('score-group-', ''), text(td)])),
      no_data: [...tr.querySelectorAll('[data-testid=score-missing] .tag-nodata')].map(
        (t) => t.dataset.kpi),
    })),
    tiles: [...document.querySelectorAll('[data-testid=overview-tile]')].map((li) => ({
      kpi: li.dataset.kpi, value: text(q(li, 'overview-value')),
      status: q(li, 'overview-status').dataset.status,
      status_text: text(q(li, 'overview-status')), change: change(q(li, 'overview-change')),
    })),
    chart: [...document.querySelectorAll('[data-testid=chart-point]')].map(
      (c) => [Number(c.dataset.value), c.dataset.basis]),
    overdue: [...document.querySelectorAll('[data-testid=overdue-row]')].map((tr) => ({
      unit: tr.dataset.unit, open: text(q(tr, 'overdue-open')),
      overdue: text(q(tr, 'overdue-count')),
    })),
    projects: Object.fromEntries([...document.querySelectorAll('[data-testid=project-stage]')].map(
      (tr) => [tr.dataset.stage, text(q(tr, 'project-stage-count'))])),
    projects_rate: text(document.querySelector('[data-testid=projects-rate]')),
    map: Object.fromEntries([...document.querySelectorAll('[data-testid=map-commune]')].map(
      (p) => [p.dataset.code, [p.dataset.status, getComputedStyle(p).fill]])),
  };
}"""

READ_MAP = """() => {
  const panel = document.querySelector('[data-testid=map]');
  return {
    level: panel.dataset.level, kpi: panel.dataset.kpi, colour_by: panel.dataset.colourBy,
    note: document.querySelector('[data-testid=map-note]').textContent,
    note_level: document.querySelector('[data-testid=map-note]').dataset.level,
    shapes: [...document.querySelectorAll('[data-testid=map-commune]')].map((p) => ({
      code: p.dataset.code, key: p.dataset.key, status: p.dataset.status, fill: getComputedStyle(p).fill,
      label: p.getAttribute('aria-label'), role: p.getAttribute('role'), tabindex: p.getAttribute('tabindex'),
      drawn: p.getBBox().width > 0 && p.getBBox().height > 0 })),
    legend: [...document.querySelectorAll('[data-testid=map-legend-item]')].map((li) => ({
      bucket: li.dataset.bucket, lo: li.dataset.lo, hi: li.dataset.hi, text: li.textContent,
      count: Number(li.querySelector('.map-legend-count').dataset.count),
      fill: getComputedStyle(li.querySelector('[data-testid=map-swatch]')).fill })),
  };
}"""

READ_SCORECARD = """() => {
  const card = document.querySelector('[data-testid=scorecard]');
  return {
    unit: card.dataset.unit, key: card.dataset.key, basis: card.dataset.basis,
    name: card.querySelector('[data-testid=scorecard-unit]').textContent,
    notes: [...card.querySelectorAll('[data-testid=scorecard-basis] [data-testid=basis-note]')].map(
      (n) => n.dataset.basis),
    rows: [...card.querySelectorAll('[data-testid=scorecard-row]')].map((tr) => ({
      kpi: tr.dataset.kpi, value: tr.querySelector('[data-testid=scorecard-value]').textContent,
      status: tr.querySelector('[data-testid=scorecard-status]').dataset.status,
      previous: tr.querySelector('[data-testid=scorecard-previous]').textContent })),
  };
}"""


def api_params(period: dict[str, str]) -> dict[str, str]:
    return {"from": period["from"], "to": period["to"], "as_of": period["as_of"]}


def map_level(level: str, as_of: str) -> str:
    return "former_district" if level == "former_district" or as_of < REFORM else "commune"


def map_expected(live: Live, period: dict[str, str], level: str, units: list[dict[str, Any]]) -> dict[str, Any]:
    """Per map commune: (status, value) of the row the map colours it by."""
    ranking = live.json(f"/v1/kpis/{KPI}/ranking", {"level": level, **api_params(period)})["items"]
    if level == "commune":
        rows = {r["unit_key"]: r for r in ranking}
        pick = [rows.get(u["key"]) for u in units]
    else:
        rows = {r["unit"]: r for r in ranking}
        pick = [rows.get(u["former_district"]) for u in units]
    return {
        "rows": {u["code"]: ("no_data", None) if r is None else (r["status"], r["value"]) for u, r in zip(units, pick)},
        "values": [r["value"] for r in ranking],
    }


def expected(live: Live, period: dict[str, str], kpis: dict[str, Any], units: list[dict[str, Any]]) -> dict[str, Any]:
    """The API's answers for the page's period and day, projected to what the page shows."""
    params = api_params(period)
    ranking = live.json(f"/v1/kpis/{KPI}/ranking", {"level": "commune", **params})
    score = live.json("/v1/score", {"level": "commune", **params})
    card = live.json("/v1/units/38/scorecard", params)
    series = live.json(f"/v1/kpis/{KPI}/series", {"unit": "38", "granularity": "day", **params})
    overdue = live.json("/v1/dossiers/overdue", {"unit": "38"})
    projects = live.json("/v1/projects", {"unit": "38"})
    coloured = map_expected(live, period, map_level("commune", period["as_of"]), units)
    d = digits(kpis[KPI]["unit"])

    def group_text(g: dict[str, Any]) -> str:
        if g["points_with_data"] > 0:
            return f"{fmt(g['points'], 1)}/{fmt(g['points_with_data'], 0)}"
        not_computable = all(i["status"] == "not_computable" for i in g["indicators"])
        return "không tính được¹" if not_computable else "không có dữ liệu"

    return {
        "ranking": [
            {
                "unit": r["unit"],
                "key": r["unit_key"],
                "rank": "—" if r["rank"] is None else str(r["rank"]),
                "name": r["unit_name"],
                "value": fmt(r["value"], d),
                "status": r["status"],
                "status_text": STATUS_VI[r["status"]],
                "previous": fmt(r["previous_value"], d),
                "change": fmt(r["change"], d, sign=True),
                "basis": r["basis"],
                "mark": r["basis"],
            }
            for r in ranking["items"]
        ],
        "score": [
            {
                "unit": r["unit"],
                "key": r["unit_key"],
                "rank": "—" if r["rank"] is None else str(r["rank"]),
                "name": r["unit_name"],
                "score": fmt(r["score"], 1),
                "points": f"{fmt(r['points'], 1)}/{fmt(r['max_points_with_data'], 0)}",
                "basis": r["basis"],
                "groups": {g["group"]: group_text(g) for g in r["groups"]},
                "no_data": r["no_data"],
            }
            for r in score["items"]
        ],
        "tiles": sorted(
            (
                {
                    "kpi": r["kpi"],
                    "value": fmt(r["value"], digits(r["unit_of_measure"])),
                    "status": r["status"],
                    "status_text": STATUS_VI[r["status"]],
                    "change": fmt(r["change"], digits(r["unit_of_measure"]), sign=True),
                }
                for r in card["items"]
            ),
            key=lambda t: t["kpi"],
        ),
        "chart": [[p["value"], p["basis"]] for p in series["items"] if p["value"] is not None],
        "overdue": sorted(
            (
                {"unit": u["unit"], "open": fmt(u["open"], 0), "overdue": fmt(u["overdue"], 0)}
                for u in overdue["per_unit"]
            ),
            key=lambda u: u["unit"],
        ),
        "projects": {stage: fmt(n, 0) for stage, n in projects["counts_by_stage"].items()},
        "projects_rate": "—" if projects["on_schedule_rate"] is None else fmt(projects["on_schedule_rate"], 1) + "%",
        "map": {code: [status, STATUS_FILL[status]] for code, (status, _v) in coloured["rows"].items()},
    }


def shown_matches(shown: dict[str, Any]) -> dict[str, Any]:
    out = {k: shown[k] for k in ("ranking", "score", "chart", "projects", "projects_rate", "map")}
    out["tiles"] = sorted(shown["tiles"], key=lambda t: t["kpi"])
    out["overdue"] = sorted(shown["overdue"], key=lambda u: u["unit"])
    return out


def scorecard_expected(live: Live, code: str, period: dict[str, str], as_of: str) -> dict[str, Any]:
    card = live.json(f"/v1/units/{code}/scorecard", {"from": period["from"], "to": period["to"], "as_of": as_of})
    rows = [
        {
            "kpi": r["kpi"],
            "value": fmt_value(r["value"], r["unit_of_measure"]),
            "status": r["status"],
            "previous": fmt_value(r["previous_value"], r["unit_of_measure"]),
        }
        for r in card["items"]
    ]
    return {"unit": card["unit"], "basis": card["basis"], "rows": sorted(rows, key=lambda r: r["kpi"])}


INNER_POINT = """(code) => {
  const shape = document.querySelector(`[data-testid=map-commune][data-code='${code}']`);
  shape.scrollIntoView({ block: 'center' });
  const r = shape.getBoundingClientRect();
  for (let i = 1; i < 16; i += 1) for (let j = 1; j < 16; j += 1) {
    const x = r.left + (r.width * i) / 16;
    const y = r.top + (r.height * j) / 16;
    if (document.elementFromPoint(x, y) === shape) return { x, y };
  }
  return null;
}"""


def commune_point(page: Any, code: str) -> tuple[float, float]:
    """A point of the viewport where the commune's shape is on top (shapes are not rectangles,
    and the toolbar sticks over the page's top)."""
    point = page.evaluate(INNER_POINT, code)
    assert point is not None, f"no visible point of commune {code}"
    return point["x"], point["y"]


def open_commune(page: Any, code: str, how: str = "click") -> dict[str, Any]:
    """Click (or focus and press Enter on) a commune of the map; the scorecard it opens."""
    shape = page.locator(f"[data-testid=map-commune][data-code='{code}']")
    key = shape.get_attribute("data-key")
    if how == "click":
        page.mouse.click(*commune_point(page, code))
    else:
        shape.focus()
        page.keyboard.press("Enter")
    page.wait_for_selector(f"[data-testid=scorecard][data-key='{key}'][data-state=ready]")
    card = dict(page.evaluate(READ_SCORECARD))
    card["rows"] = sorted(card["rows"], key=lambda r: r["kpi"])  # the page groups them by theme
    return card


# ---- tests ---------------------------------------------------------------------------------------


def test_dashboard_shows_the_apis_numbers(request: pytest.FixtureRequest) -> None:
    require_chromium()
    live: Live = request.getfixturevalue("live")
    context, page, watch = new_page(request.getfixturevalue("browser"))
    try:
        response = page.goto(f"{live.base}/")
        assert response is not None and response.status == 200
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_selector("[data-testid=key-input]", state="visible")
        sign_in(page, live)
        assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == live.key
        assert page.text_content("[data-testid=scope-name]") == "Tỉnh Thanh Hóa"

        # the period choices are anchored on the server's clock: "30 days" is the API's default,
        # and every view asks about the units of its last day (the API's default as_of)
        default = live.json("/v1/units/38/scorecard")
        period = period_of(page)
        last_day = (dt.date.fromisoformat(period["to"][:10]) - dt.timedelta(days=1)).isoformat()
        assert period == {"from": default["from"], "to": default["to"], "as_of": last_day}
        assert page.is_checked("[data-testid=range-30]") and page.is_checked("[data-testid=level-commune]")

        kpis = {k["id"]: k for k in live.json("/v1/kpis")["items"]}
        options = page.eval_on_selector_all("[data-testid=kpi-select] option", "els => els.map(e => e.value)")
        assert sorted(options) == sorted(k for k, v in kpis.items() if v["kind"] != "not_computable")
        select_kpi(page, KPI)
        units = live.map_units()

        def read_page() -> Any:
            reload_with(page, lambda: page.click("[data-testid=refresh]"))
            return page.evaluate(READ_PAGE)

        shown, want = stable(lambda: expected(live, period, kpis, units), read_page)
        assert shown["period"] == period
        assert {(p[1], p[2]) for p in shown["panels"]} == {(period["from"], period["to"])}, shown["panels"]
        got = shown_matches(shown)
        # the default level: the communes of the period's last day (today's 166 after the reform)
        communes = live.json("/v1/units", {"level": "commune", "as_of": period["as_of"]})["items"]
        assert sorted(r["key"] for r in got["ranking"]) == sorted(u["key"] for u in communes)
        # unit order first (a clearer message), then every displayed value and basis
        assert [r["key"] for r in got["ranking"]] == [r["key"] for r in want["ranking"]]
        assert [r["key"] for r in got["score"]] == [r["key"] for r in want["score"]]
        for section in ("ranking", "score", "tiles", "chart", "overdue", "projects", "projects_rate", "map"):
            assert got[section] == want[section], section
        assert any(r["value"] != "—" for r in got["ranking"]) and any(r["score"] != "—" for r in got["score"])

        # the open-alerts panel exists only when its endpoint does
        alerts = live.get("/v1/alerts", {"state": "open"})
        if alerts.status_code == 200:
            assert page.locator("[data-testid=alerts]").is_visible()
        else:
            assert alerts.status_code == 404, alerts.text
            assert page.locator("[data-testid=alerts]").is_hidden()

        # CSV export: the API's CSV, fetched with the bearer header, saved from a Blob URL
        with page.expect_download() as download_info:
            page.click("[data-testid=csv-ranking]")
        download = download_info.value
        assert re.fullmatch(
            rf"{KPI}-commune-ranking_\d{{4}}-\d\d-\d\d_\d{{4}}-\d\d-\d\d\.csv", download.suggested_filename
        ), download.suggested_filename
        assert download.url.startswith("blob:")
        body = Path(download.path()).read_bytes()
        api_csv = live.get(f"/v1/kpis/{KPI}/ranking", {"level": "commune", **api_params(period)}, accept="text/csv")
        assert api_csv.status_code == 200 and body == api_csv.content
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
        assert [r["unit_key"] for r in rows] == [r["key"] for r in got["ranking"]]

        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        watch.assert_clean(live)
    finally:
        context.close()


def test_map_draws_the_communes_in_the_apis_colours(request: pytest.FixtureRequest) -> None:
    require_chromium()
    live: Live = request.getfixturevalue("live")
    context, page, watch = new_page(request.getfixturevalue("browser"))
    try:
        sign_in(page, live)
        select_kpi(page, KPI)
        period = period_of(page)
        units = live.map_units()
        by_code = {u["code"]: u for u in units}
        geometry = live.get("/v1/map/communes")
        assert geometry.status_code == 200
        codes = sorted(str(f["id"]) for f in geometry.json()["features"])
        level = map_level("commune", period["as_of"])

        # coloured by status: every commune in the colour of its API status; the legend counts them
        shown, want = stable(lambda: map_expected(live, period, level, units), lambda: page.evaluate(READ_MAP))
        assert shown["level"] == shown["note_level"] == level and shown["colour_by"] == "status"
        assert len(shown["shapes"]) == len(codes) == 166
        assert sorted(s["code"] for s in shown["shapes"]) == codes
        assert all(s["drawn"] and s["role"] == "button" and s["tabindex"] == "0" for s in shown["shapes"])
        statuses: dict[str, list[str]] = {}
        for shape in shown["shapes"]:
            status, value = want["rows"][shape["code"]]
            unit = by_code[shape["code"]]
            assert (shape["status"], shape["fill"]) == (status, STATUS_FILL[status]), shape
            assert shape["key"] == unit["key"]
            # the accessible name: the commune, its value and its status
            assert shape["label"].startswith(f"{unit['full_name']}: {fmt_value(value, '%')}, {STATUS_VI[status]}")
            statuses.setdefault(status, []).append(shape["code"])
        if level == "commune":
            assert len(set(statuses) & {"green", "amber", "red"}) >= 2, statuses
        legend = {item["bucket"]: item for item in shown["legend"]}
        for status in ("green", "amber", "red", "no_data"):
            assert legend[status]["fill"] == STATUS_FILL[status]
            assert STATUS_VI[status] in legend[status]["text"]
            assert legend[status]["count"] == len(statuses.get(status, [])), legend[status]

        # hover, and keyboard focus, show the commune's name and value; focus shows a ring
        coloured = [c for s in ("green", "amber", "red") for c in statuses.get(s, [])[:2]]
        assert len(coloured) >= 2, statuses
        tip = page.locator("[data-testid=map-tip]")
        page.mouse.move(*commune_point(page, coloured[1]))
        assert tip.get_attribute("visibility") == "visible" and tip.get_attribute("data-code") == coloured[1]
        assert by_code[coloured[1]]["full_name"] in tip.text_content()
        page.mouse.move(0, 0)
        assert tip.get_attribute("visibility") == "hidden"
        code = coloured[0]
        shape = page.locator(f"[data-testid=map-commune][data-code='{code}']")
        shape.focus()
        assert page.evaluate("document.activeElement.dataset.code") == code
        assert tip.get_attribute("visibility") == "visible" and tip.get_attribute("data-code") == code
        tip_text = tip.text_content()
        assert by_code[code]["full_name"] in tip_text and fmt_value(want["rows"][code][1], "%") in tip_text
        ring = page.evaluate(
            """(code) => {
          const outer = document.querySelector('.map-focus .map-focus-outer');
          const shape = document.querySelector(`[data-code='${code}']`);
          return { on: outer.parentNode.classList.contains('is-on'),
                   same: outer.getAttribute('d') === shape.getAttribute('d'), display: getComputedStyle(outer).display,
                   width: parseFloat(getComputedStyle(outer).strokeWidth) };
        }""",
            code,
        )
        assert ring["on"] and ring["same"] and ring["display"] != "none" and ring["width"] >= 3, ring
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        box = page.evaluate("""() => { const r = document.querySelector('[data-testid=map]').getBoundingClientRect();
          return { x: r.x + scrollX - 16, y: r.y + scrollY - 12, width: r.width + 32, height: r.height + 12 }; }""")
        page.screenshot(path=str(ARTIFACTS / "dashboard-map.png"), full_page=True, clip=box)

        # coloured by value: each commune in its value class's colour, the legend lists the classes
        page.click("label[for=map-colour-value]")
        page.wait_for_selector("[data-testid=map][data-colour-by=value][data-state=ready]")
        shown, want = stable(lambda: map_expected(live, period, level, units), lambda: page.evaluate(READ_MAP))
        classes = value_classes(want["values"])
        buckets: dict[str, int] = {}
        for shape in shown["shapes"]:
            bucket, fill = class_fill(classes, want["rows"][shape["code"]][1])
            assert shape["fill"] == fill, (shape, want["rows"][shape["code"]])
            buckets[bucket] = buckets.get(bucket, 0) + 1
        legend = {item["bucket"]: item for item in shown["legend"]}
        assert classes is not None and set(legend) == {f"c{i}" for i in range(classes[1])} | {"no_data"}
        for i in range(classes[1]):
            item = legend[f"c{i}"]
            assert (float(item["lo"]), float(item["hi"])) == (classes[0][i], classes[0][i + 1])
            assert item["fill"] == class_fill(classes, classes[0][i])[1]
            assert item["count"] == buckets.get(f"c{i}", 0), item
            assert item["text"].startswith(fmt(classes[0][i], 1)), item

        for code, how in [(coloured[0], "enter"), *((c, "click") for c in coloured[1:4])]:
            as_of = max(period["as_of"], by_code[code]["valid_from"])
            card, api = stable(
                partial(scorecard_expected, live, code, period, as_of), partial(open_commune, page, code, how)
            )
            assert card["key"] == by_code[code]["key"] and card["name"] == by_code[code]["full_name"]
            assert (card["unit"], card["basis"], card["rows"]) == (api["unit"], api["basis"], api["rows"])
            assert page.evaluate("document.activeElement.id") == "unitcard-title"
        watch.assert_clean(live)
    finally:
        context.close()


def test_former_districts_and_a_period_before_the_reform(request: pytest.FixtureRequest) -> None:
    require_chromium()
    live: Live = request.getfixturevalue("live")
    context, page, watch = new_page(request.getfixturevalue("browser"))
    try:
        sign_in(page, live)
        select_kpi(page, KPI)
        units = live.map_units()
        by_code = {u["code"]: u for u in units}
        period = period_of(page)

        # by former district: the API's level=former_district ranking; the map in the districts' view
        reload_with(page, lambda: page.click("label[for=level-former]"))
        assert page.get_attribute("[data-testid=ranking]", "data-level") == "former_district"

        def ranking_rows() -> list[tuple[str, str, str, str]]:
            items = live.json(f"/v1/kpis/{KPI}/ranking", {"level": "former_district", **api_params(period)})["items"]
            return [(r["unit"], fmt(r["value"], 1), r["status"], r["basis"]) for r in items]

        read = (
            "rs => rs.map(r => [r.dataset.unit, r.querySelector('[data-testid=ranking-value]').textContent, "
            "r.querySelector('[data-testid=ranking-status]').dataset.status, r.dataset.basis])"
        )
        shown, want = stable(
            ranking_rows, lambda: [tuple(r) for r in page.eval_on_selector_all("[data-testid=ranking-row]", read)]
        )
        assert shown == want and len(shown) == 26
        shown, want = stable(
            lambda: map_expected(live, period, "former_district", units), lambda: page.evaluate(READ_MAP)
        )
        assert shown["level"] == "former_district" and "huyện cũ" in shown["note"]
        for shape in shown["shapes"]:
            status = want["rows"][shape["code"]][0]
            assert (shape["status"], shape["fill"]) == (status, STATUS_FILL[status]), shape

        # a month before 1 July 2025: the communes of its last day, and the map by former district
        reload_with(page, lambda: page.click("label[for=level-commune]"))
        months = page.eval_on_selector_all("[data-testid=month-select] option", "os => os.map(o => o.value)")
        month = "2025-06-01"
        assert month in months
        reload_with(page, lambda: page.select_option("[data-testid=month-select]", month))
        before = period_of(page)
        assert (before["from"][:10], before["to"][:10], before["as_of"]) == (month, REFORM, "2025-06-30")
        communes = live.json("/v1/units", {"level": "commune", "as_of": "2025-06-30"})["items"]
        keys = page.eval_on_selector_all("[data-testid=ranking-row]", "rs => rs.map(r => r.dataset.key)")
        api = live.json(f"/v1/kpis/{KPI}/ranking", {"level": "commune", **api_params(before)})["items"]
        assert (
            keys == [r["unit_key"] for r in api]
            and sorted(keys) == sorted(u["key"] for u in communes)
            and len(keys) > 166
        )
        shown, want = stable(
            lambda: map_expected(live, before, "former_district", units), lambda: page.evaluate(READ_MAP)
        )
        assert shown["level"] == "former_district" and "trước khi các xã, phường này được thành lập" in shown["note"]
        assert len(shown["shapes"]) == 166
        for shape in shown["shapes"]:
            status = want["rows"][shape["code"]][0]
            assert (shape["status"], shape["fill"]) == (status, STATUS_FILL[status]), shape

        # a commune of today, clicked there: its scorecard restated from what it was formed from
        card, api = stable(
            lambda: scorecard_expected(live, SPLIT_COMMUNE, before, REFORM),
            lambda: open_commune(page, SPLIT_COMMUNE),
        )
        assert api["basis"] == "restated_approximate"
        assert card["key"] == by_code[SPLIT_COMMUNE]["key"] and card["basis"] == api["basis"]
        assert card["notes"] == [api["basis"]] and card["rows"] == api["rows"]
        # … and its series marks the days before it existed
        page.select_option("[data-testid=series-unit]", by_code[SPLIT_COMMUNE]["key"])
        page.wait_for_selector(f"[data-testid=series][data-key='{by_code[SPLIT_COMMUNE]['key']}'][data-state=ready]")
        assert page.locator("[data-testid=chart-before]").count() == 1
        assert "Trước khi đơn vị được thành lập" in page.text_content("[data-testid=chart-legend]")
        watch.assert_clean(live)
    finally:
        context.close()


def test_period_choices_reload_every_view(request: pytest.FixtureRequest) -> None:
    require_chromium()
    live: Live = request.getfixturevalue("live")
    context, page, watch = new_page(request.getfixturevalue("browser"))
    try:
        sign_in(page, live)
        default = period_of(page)

        # the last 7 days: same end as the server's default, every view reloaded for it
        reload_with(page, lambda: page.click("label[for=range-7]"))
        period = period_of(page)
        assert period["to"] == default["to"] and period["as_of"] == default["as_of"]
        days = dt.date.fromisoformat(period["to"][:10]) - dt.date.fromisoformat(period["from"][:10])
        assert days.days == 7
        for panel in ("overview", "score", "ranking", "scorecard", "map"):
            shown = period_of(page, panel)
            assert (shown["from"], shown["to"]) == (period["from"], period["to"]), panel
        score = live.json("/v1/score", {"level": "commune", **api_params(period)})
        shown = page.eval_on_selector_all("[data-testid=score-row]", "rs => rs.map(r => r.dataset.key)")
        assert shown == [r["unit_key"] for r in score["items"]]

        # the province: one row in score and ranking
        reload_with(page, lambda: page.click("label[for=level-province]"))
        assert page.eval_on_selector_all("[data-testid=score-row]", "rs => rs.map(r => r.dataset.unit)") == ["38"]
        assert page.eval_on_selector_all("[data-testid=ranking-row]", "rs => rs.map(r => r.dataset.unit)") == ["38"]

        # a calendar month: from the 1st to the 1st of the next month
        months = page.eval_on_selector_all("[data-testid=month-select] option", "os => os.map(o => o.value)")
        reload_with(page, lambda: page.select_option("[data-testid=month-select]", months[2]))
        assert not page.is_checked("[data-testid=range-30]")
        ranking = period_of(page, "ranking")
        assert {k: ranking[k] for k in ("from", "to")} == {k: period_of(page)[k] for k in ("from", "to")}
        assert ranking["from"].startswith(months[2]) and ranking["to"][8:10] == "01"
        watch.assert_clean(live)
    finally:
        context.close()


def test_wrong_key_shows_the_problem_detail_and_sign_out_clears_the_key(request: pytest.FixtureRequest) -> None:
    require_chromium()
    live: Live = request.getfixturevalue("live")
    context, page, watch = new_page(request.getfixturevalue("browser"))
    try:
        page.goto(f"{live.base}/")
        page.fill("[data-testid=key-input]", "not-a-real-key")
        page.click("[data-testid=key-submit]")
        error = page.wait_for_selector("[data-testid=signin-error]:not([hidden])")
        problem = httpx.get(f"{live.base}/v1/units", headers={"authorization": "Bearer not-a-real-key"}).json()
        assert problem["detail"] in error.text_content()
        assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") is None
        assert page.is_hidden("main")

        # the right key: signed in, and still signed in after a reload (sessionStorage)
        sign_in(page, live)
        page.reload()
        page.wait_for_selector("main[data-state=ready]")
        assert page.is_visible("[data-testid=overview-tile]")
        assert page.locator("[data-testid=map-commune]").count() == 166

        page.click("[data-testid=sign-out]")
        page.wait_for_selector("[data-testid=key-input]", state="visible")
        assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") is None
        assert page.is_hidden("main") and page.is_hidden("[data-testid=period-toolbar]")
        assert page.locator("[data-testid=overview-tile]").count() == 0
        assert page.locator("[data-testid=map-commune]").count() == 0

        watch.assert_clean(live, [("Failed to load resource: the server responded with a status of 401", "/v1/")])
        assert not [u for u in watch.urls if "not-a-real-key" in u]
    finally:
        context.close()


FORBIDDEN_JS = (
    r"\.style\b|setAttribute\(\s*['\"]style|\.cssText|\.innerHTML|\.outerHTML"
    r"|insertAdjacentHTML|\beval\(|new Function"
)


def test_dashboard_has_no_inline_script_or_style() -> None:
    """The CSP forbids them; a static check finds them before the browser does."""
    static = ROOT / "services" / "kpi_api" / "static"
    html = (static / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\sstyle\s*=", html), "style attribute"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"<style", html), "<style> element"
    scripts = list(static.glob("*.js"))
    assert {"app.js", "map.js"} <= {js.name for js in scripts}
    for js in scripts:
        source = js.read_text()
        assert not re.search(FORBIDDEN_JS, source), js.name
        # no third-party anything: modules import from this folder only
        for target in re.findall(r"""\bfrom\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)""", source):
            assert any(t.startswith("./") for t in target if t), (js.name, target)
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", source), js.name
