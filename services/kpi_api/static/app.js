// Operators' dashboard of the Thanh Hóa e-government KPI API. Vanilla JS, no build step.
//
// - The operator key lives in sessionStorage only and travels in the Authorization header;
//   it never appears in a URL (CSV exports are fetched, then saved through a Blob URL).
// - Periods are anchored on the server's clock: the scope unit's scorecard is first read
//   without from/to (the server's last 30 days) and every choice is derived from its `to`.
// - Every panel carries data-state="loading|ready|error" (and <main> "ready" once nothing
//   is loading) so the browser test can wait on conditions instead of time.

import { $, clear, h, icon, s } from "./dom.js";
import {
  STATUS, addDays, addMonths, digitsFor, formatDate, formatInstant, formatNumber, formatPeriod,
  formatValue, splitIso, startOfDay, unitVi,
} from "./format.js";
import { seriesChart } from "./chart.js";

const KEY_STORAGE = "thanhhoa.kpi.operatorKey";

const GROUPS = [
  { id: "services", vi: "Dịch vụ công, thủ tục hành chính (QĐ 766)", en: "Public services and administrative procedures" },
  { id: "documents", vi: "Văn bản điện tử, dự án CNTT và kênh số", en: "Electronic documents, IT projects, digital take-up" },
  { id: "education", vi: "Giáo dục", en: "Education" },
  { id: "health", vi: "Y tế", en: "Health" },
  { id: "transport", vi: "Giao thông công cộng", en: "Public transport" },
  { id: "culture", vi: "Văn hóa, thư viện, bảo tàng", en: "Culture" },
  { id: "other", vi: "Chỉ tiêu khác", en: "Other indicators" },
];

const SCORE_GROUPS_VI = {
  publicity: "Công khai, minh bạch",
  progress: "Tiến độ, kết quả giải quyết",
  digitisation: "Số hóa hồ sơ",
  online_services: "Dịch vụ công trực tuyến",
  online_payment: "Thanh toán trực tuyến",
  satisfaction: "Mức độ hài lòng",
};

const STAGES = [
  { id: "proposal", vi: "Đề xuất", en: "Proposal" },
  { id: "design", vi: "Thiết kế", en: "Design" },
  { id: "appraisal", vi: "Thẩm định", en: "Appraisal" },
  { id: "in_progress", vi: "Đang triển khai", en: "In progress" },
  { id: "completed", vi: "Hoàn thành", en: "Completed" },
];

const SCHEDULE_VI = {
  on_schedule: "Đúng tiến độ",
  behind: "Chậm tiến độ",
  overdue: "Quá hạn hoàn thành",
  no_report: "Chưa báo cáo tiến độ",
  completed: "Đã hoàn thành",
};

const SECTOR_VI = { education: "Giáo dục", health: "Y tế", transport: "Giao thông", culture: "Văn hóa" };

const state = {
  key: null,
  scope: null, // the operator's scope unit {code, name, full_name}
  units: new Map(), // code → unit, every unit in scope
  districts: [],
  kpis: [], // every KPI of the registry
  kpiById: new Map(),
  anchor: null, // { end: "YYYY-MM-DD" (exclusive), offset: "+07:00" }
  period: null, // { from, to } ISO strings used for every period view
  tokens: {},
};

// ---- API -----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

async function request(path, params = {}, accept = "application/json") {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${state.key}`, Accept: accept } });
  } catch (err) {
    throw new ApiError(0, "Không kết nối được máy chủ", `Không gửi được yêu cầu (${err.message}).`);
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = {};
    }
    throw new ApiError(response.status, problem.title || response.statusText || "Lỗi", problem.detail || `HTTP ${response.status}`);
  }
  return response;
}

async function api(path, params) {
  return (await request(path, params)).json();
}

function describe(err) {
  if (err instanceof ApiError) return err.status ? `${err.title} (HTTP ${err.status}): ${err.detail}` : `${err.title}: ${err.detail}`;
  return `Lỗi không mong đợi: ${err.message}`;
}

// ---- small renderers -----------------------------------------------------------------------

function badge(status, testid) {
  const info = STATUS[status] || { vi: status, icon: "dash" };
  return h("span", { class: ["badge", `badge-${status}`], "data-testid": testid, "data-status": status }, icon(info.icon), info.vi);
}

function threshold(value, unit) {
  return Number.isInteger(value) ? formatValue(value, unit).replace(/,0+(?=\D|$)/, "") : formatValue(value, unit);
}

function targetText(kpi, target) {
  if (target === null || target === undefined) return "Chưa đặt mục tiêu";
  const op = kpi && kpi.direction === "lower" ? "≤" : "≥";
  return `${op} ${threshold(target, kpi ? kpi.unit : "")}`;
}

function changeNode(change, kpi, testid, { long = false } = {}) {
  const unit = kpi ? kpi.unit : "";
  if (change === null || change === undefined) {
    return h("span", { class: "change change-none", "data-testid": testid }, long ? "Kỳ trước không có dữ liệu" : "—");
  }
  const digits = digitsFor(unit);
  const rounded = Number(Math.abs(change).toFixed(digits));
  const better = rounded === 0 ? null : (kpi && kpi.direction === "lower") ? change < 0 : change > 0;
  const cls = better === null ? "change-flat" : better ? "change-better" : "change-worse";
  const arrow = rounded === 0 ? "=" : change > 0 ? "▲" : "▼";
  const suffix = unit === "%" ? " điểm %" : ` ${unitVi(unit)}`;
  const verdict = better === null ? "không đổi" : better ? "tốt lên" : "kém đi";
  return h("span", { class: ["change", cls], "data-testid": testid },
    h("span", { class: "change-arrow", "aria-hidden": "true" }, arrow),
    h("span", { class: "change-value" }, formatNumber(change, digits, { sign: true })),
    long ? h("span", { class: "change-unit" }, `${suffix} so với kỳ trước`) : null,
    h("span", { class: "visually-hidden" }, ` (${verdict})`));
}

function withBar(text, fraction, status, testid) {
  return h("span", { class: "value-bar" }, fraction === null ? null : bar(fraction, status), h("span", { class: "value-text", "data-testid": testid }, text));
}

function bar(fraction, status) {
  const width = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return s("svg", { class: ["bar", `bar-${status}`], viewBox: "0 0 100 8", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    s("rect", { class: "bar-track", x: "0", y: "0", width: "100", height: "8", rx: "2" }),
    s("rect", { class: "bar-fill", x: "0", y: "0", width: width.toFixed(2), height: "8", rx: "2" }));
}

function kpiName(id) {
  const kpi = state.kpiById.get(id);
  return kpi ? kpi.name_vi : id;
}

function groupOf(kpi) {
  if (!kpi) return "other";
  if ((kpi.source || "").includes("766")) return "services";
  if (!kpi.sectors || !kpi.sectors.length) return "documents";
  return GROUPS.some((g) => g.id === kpi.sectors[0]) ? kpi.sectors[0] : "other";
}

function message(id, text, kind = "info") {
  const el = document.getElementById(id);
  clear(el);
  if (text) el.append(h("p", { class: ["notice", `notice-${kind}`] }, text));
}

function periodInfo(data) {
  return formatPeriod(data.from, data.to);
}

// ---- panels: a load is (fetch, then render if still the latest request) --------------------

function updateMainState() {
  const main = $("#main");
  const busy = main.querySelector("[data-state='loading']");
  main.dataset.state = busy ? "loading" : "ready";
  main.setAttribute("aria-busy", busy ? "true" : "false");
}

async function run(name, panel, messageId, load) {
  const token = (state.tokens[name] = (state.tokens[name] || 0) + 1);
  panel.dataset.state = "loading";
  updateMainState();
  try {
    const render = await load();
    if (state.tokens[name] !== token) return;
    message(messageId, "");
    render();
    panel.dataset.state = "ready";
  } catch (err) {
    if (state.tokens[name] !== token) return;
    if (err instanceof ApiError && err.status === 401) {
      expire(err);
      return;
    }
    message(messageId, describe(err), "error");
    panel.dataset.state = "error";
  } finally {
    if (state.tokens[name] === token) updateMainState();
  }
}

// ---- 3. overview of the scope unit -----------------------------------------------------------

function loadOverview() {
  const panel = $("#overview");
  const { from, to } = state.period;
  return run("overview", panel, "overview-message", async () => {
    const data = await api(`/v1/units/${encodeURIComponent(state.scope.code)}/scorecard`, { from, to });
    return () => renderOverview(panel, data);
  });
}

function renderOverview(panel, data) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  $("#overview-period").textContent = periodInfo(data);

  const counts = { green: 0, amber: 0, red: 0, no_data: 0, no_target: 0 };
  for (const row of data.items) counts[row.status] = (counts[row.status] || 0) + 1;
  const withTarget = counts.green + counts.amber + counts.red;
  const summary = clear($("#overview-summary"));
  summary.append(
    h("p", { class: "summary-lead" },
      h("strong", { "data-testid": "summary-green" }, String(counts.green)), ` / ${withTarget} chỉ tiêu có mục tiêu và có dữ liệu đã đạt mục tiêu`,
      h("span", { class: "en", lang: "en" }, ` ${counts.green} of ${withTarget} indicators with a target and data are on target`)),
    h("ul", { class: "summary-chips" },
      ...["green", "amber", "red", "no_data", "no_target"].map((st) =>
        h("li", { class: ["chip", `chip-${st}`] }, icon(STATUS[st].icon), h("span", {}, STATUS[st].vi), h("strong", {}, String(counts[st]))))),
  );

  const tiles = clear($("#overview-tiles"));
  for (const group of GROUPS) {
    const rows = data.items.filter((r) => groupOf(state.kpiById.get(r.kpi)) === group.id);
    if (!rows.length) continue;
    tiles.append(h("section", { class: "tile-group", "aria-label": group.vi },
      h("h3", { class: "tile-group-title" }, group.vi, h("span", { class: "en", lang: "en" }, group.en)),
      h("ul", { class: "tiles" }, rows.map((row) => tile(row)))));
  }
}

function tile(row) {
  const kpi = state.kpiById.get(row.kpi);
  const unit = row.unit_of_measure;
  const vi = unitVi(unit);
  const snapshot = kpi && kpi.kind === "snapshot";
  return h("li", { class: ["tile", `tile-${row.status}`], "data-testid": "overview-tile", "data-kpi": row.kpi },
    h("h4", { class: "tile-name" }, row.name_vi, h("span", { class: "en", lang: "en" }, row.name_en)),
    h("p", { class: "tile-value" },
      h("span", { "data-testid": "overview-value" }, formatNumber(row.value, digitsFor(unit))),
      row.value === null ? null : h("span", { class: "tile-unit" }, vi === "%" ? "%" : ` ${vi}`)),
    h("p", { class: "tile-meta" },
      badge(row.status, "overview-status"),
      row.target === null ? null : h("span", { class: "tile-target", "data-testid": "overview-target" }, `Mục tiêu ${targetText(kpi, row.target)}`)),
    h("p", { class: "tile-change" },
      snapshot ? h("span", { class: "change change-none", "data-testid": "overview-change" }, "Số liệu hiện tại (không theo kỳ)")
        : changeNode(row.change, kpi, "overview-change", { long: true })));
}

// ---- 7. composite score ----------------------------------------------------------------------

function loadScore() {
  const panel = $("#score");
  const { from, to } = state.period;
  return run("score", panel, "score-message", async () => {
    const data = await api("/v1/score", { level: "district", from, to });
    return () => renderScore(panel, data);
  });
}

function groupCell(g) {
  if (g.points_with_data > 0) return [h("span", {}, formatNumber(g.points, 1)), h("span", { class: "cell-sub" }, `/${formatNumber(g.points_with_data, 0)}`)];
  const nc = g.indicators.every((i) => i.status === "not_computable");
  return h("span", { class: "cell-na" }, nc ? "không tính được¹" : "không có dữ liệu");
}

function renderScore(panel, data) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  const body = clear($("#score-body"));
  const foot = clear($("#score-footnote"));
  if (!data.items.length) {
    body.append(h("p", { class: "empty" }, "Không có đơn vị nào trong phạm vi."));
    return;
  }
  const groups = data.items[0].groups.map((g) => ({ id: g.group, name: g.name, max: g.max_points }));
  const commonNc = data.items[0].not_computable.join(",");

  const table = h("table", { class: "data score-table", "data-testid": "score-table" },
    h("caption", { class: "visually-hidden" }, "Chỉ số tổng hợp của các huyện, thị xã, thành phố, xếp hạng từ cao xuống thấp"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", class: "num" }, "Hạng"),
      h("th", { scope: "col" }, "Đơn vị"),
      h("th", { scope: "col", class: "num" }, "Điểm", h("span", { class: "th-sub" }, "thang 100")),
      h("th", { scope: "col", class: "num" }, "Điểm đạt", h("span", { class: "th-sub" }, "/ tối đa có dữ liệu")),
      groups.map((g) => h("th", { scope: "col", class: "num group-col" }, SCORE_GROUPS_VI[g.id] || g.name, h("span", { class: "th-sub" }, `${g.max} điểm`))),
      h("th", { scope: "col" }, "Chỉ tiêu chưa tính điểm", h("span", { class: "th-sub" }, "không có dữ liệu / không tính được")))),
    h("tbody", {}, data.items.map((row) => {
      const sameNc = row.not_computable.join(",") === commonNc;
      return h("tr", { "data-testid": "score-row", "data-unit": row.unit },
        h("td", { class: "num rank", "data-testid": "score-rank" }, row.rank === null ? "—" : String(row.rank)),
        h("th", { scope: "row", "data-testid": "score-unit" }, row.unit_name),
        h("td", { class: "num score-cell" },
          withBar(formatNumber(row.score, 1), row.score === null ? null : row.score / 100, "score", "score-value")),
        h("td", { class: "num", "data-testid": "score-points" },
          h("span", {}, formatNumber(row.points, 1)), h("span", { class: "cell-sub" }, `/${formatNumber(row.max_points_with_data, 0)}`)),
        row.groups.map((g) => h("td", { class: "num", "data-testid": `score-group-${g.group}` }, groupCell(g))),
        h("td", { class: "gaps-cell", "data-testid": "score-missing" },
          row.no_data.length ? h("ul", { class: "tags" }, row.no_data.map((id) => h("li", { class: "tag tag-nodata", "data-kpi": id }, kpiName(id)))) : null,
          sameNc
            ? h("span", { class: "nc-note" }, `+ ${row.not_computable.length} chỉ tiêu không tính được¹`)
            : h("ul", { class: "tags" }, row.not_computable.map((id) => h("li", { class: "tag tag-nc" }, kpiName(id))))));
    })));
  body.append(table);

  const nc = [];
  for (const g of data.items[0].groups) {
    for (const ind of g.indicators) if (ind.status === "not_computable") nc.push(`${kpiName(ind.kpi)} (${formatNumber(ind.max_points, 0)} điểm)`);
  }
  foot.append(
    h("p", {}, h("strong", {}, "Cách tính: "),
      "Điểm được chuẩn hóa trên các chỉ tiêu có dữ liệu: Điểm = 100 × điểm đạt được ÷ tổng điểm tối đa của các chỉ tiêu có dữ liệu trong kỳ. ",
      "Chỉ tiêu không có dữ liệu không bị tính bằng 0 mà được loại khỏi mẫu số. Cột nhóm ghi điểm đạt / điểm tối đa của các chỉ tiêu có dữ liệu trong nhóm. ",
      h("span", { class: "en", lang: "en" }, "The score is normalised over the indicators that had data (100 × points earned ÷ points available from indicators with data); an indicator without data is left out, not counted as zero.")),
    h("p", {}, "¹ Không tính được từ dữ liệu sự kiện (chưa có nguồn số liệu): ", nc.join("; "), "."),
  );
}

// ---- 4. ranking and 5. series ---------------------------------------------------------------

function selectedKpi() {
  return state.kpiById.get($("#kpi-select").value);
}

function renderKpiAbout() {
  const kpi = selectedKpi();
  const about = clear($("#kpi-about"));
  if (!kpi) return;
  about.append(...[
    h("span", { class: "about-item" }, kpi.direction === "lower" ? "Thấp hơn là tốt hơn" : "Cao hơn là tốt hơn"),
    h("span", { class: "about-item" }, `Mục tiêu: ${targetText(kpi, kpi.target)}`),
    kpi.bands ? h("span", { class: "about-item" },
      `Ngưỡng: đạt ${kpi.direction === "lower" ? "≤" : "≥"} ${threshold(kpi.bands.green, kpi.unit)}, chưa đạt ${kpi.direction === "lower" ? ">" : "<"} ${threshold(kpi.bands.red, kpi.unit)}`) : null,
    h("span", { class: "about-item" }, `Đơn vị tính: ${unitVi(kpi.unit)}`),
    kpi.description ? h("span", { class: "about-desc en", lang: "en" }, kpi.description) : null,
  ].filter(Boolean));
}

function loadRanking() {
  const panel = $("#analysis");
  const kpi = selectedKpi();
  const { from, to } = state.period;
  return run("ranking", panel, "ranking-message", async () => {
    const data = await api(`/v1/kpis/${encodeURIComponent(kpi.id)}/ranking`, { level: "district", from, to });
    return () => renderRanking(panel, data, kpi);
  });
}

function renderRanking(panel, data, kpi) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  panel.dataset.kpi = data.kpi;
  $("#period-previous").textContent = `So với kỳ trước: ${formatPeriod(data.previous_from, data.previous_to)}`;
  $("#ranking-title").textContent = `Xếp hạng các huyện, thị xã, thành phố – ${kpi.name_vi}`;
  const unit = kpi.unit;
  const digits = digitsFor(unit);
  const max = Math.max(...data.items.map((r) => r.value ?? 0), kpi.target ?? 0, 0);
  const scale = unit === "%" ? 100 : max || 1;
  const unitCaption = unitVi(unit);
  const body = clear($("#ranking-body"));
  body.append(h("table", { class: "data ranking-table", "data-testid": "ranking-table" },
    h("caption", { class: "visually-hidden" }, `Xếp hạng theo ${kpi.name_vi}`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", class: "num" }, "Hạng"),
      h("th", { scope: "col" }, "Đơn vị"),
      h("th", { scope: "col", class: "num" }, "Giá trị", h("span", { class: "th-sub" }, unitCaption)),
      h("th", { scope: "col" }, "Trạng thái"),
      h("th", { scope: "col", class: "num" }, "Kỳ trước", h("span", { class: "th-sub" }, unitCaption)),
      h("th", { scope: "col", class: "num" }, "Thay đổi", h("span", { class: "th-sub" }, unit === "%" ? "điểm %" : unitCaption)))),
    h("tbody", {}, data.items.map((row) => h("tr", { "data-testid": "ranking-row", "data-unit": row.unit },
      h("td", { class: "num rank", "data-testid": "ranking-rank" }, row.rank === null ? "—" : String(row.rank)),
      h("th", { scope: "row", "data-testid": "ranking-unit" },
        h("button", { type: "button", class: "link-button", "data-unit": row.unit, title: "Xem diễn biến của đơn vị này trên biểu đồ", onclick: () => showUnitInChart(row.unit) }, row.unit_name)),
      h("td", { class: "num value-cell" },
        withBar(formatNumber(row.value, digits), row.value === null ? null : row.value / scale, row.status, "ranking-value")),
      h("td", {}, badge(row.status, "ranking-status")),
      h("td", { class: "num", "data-testid": "ranking-previous" }, formatNumber(row.previous_value, digits)),
      h("td", { class: "num" }, changeNode(row.change, kpi, "ranking-change")))))));
  renderRankingSummary(data, kpi);
  $("#ranking-footnote").textContent =
    `Xếp hạng trên ${data.ranked_units} đơn vị có dữ liệu (các đơn vị bằng giá trị được đồng hạng; đơn vị không có dữ liệu không được xếp hạng). ` +
    `Kỳ trước: ${formatPeriod(data.previous_from, data.previous_to)}.`;
}

function renderRankingSummary(data, kpi) {
  const box = clear($("#ranking-summary"));
  const counts = {};
  for (const r of data.items) counts[r.status] = (counts[r.status] || 0) + 1;
  const ranked = data.items.filter((r) => r.rank !== null);
  const chips = ["green", "amber", "red", "no_data", "no_target"].filter((st) => counts[st]).map((st) =>
    h("li", { class: ["chip", `chip-${st}`] }, icon(STATUS[st].icon), h("span", {}, STATUS[st].vi), h("strong", {}, String(counts[st]))));
  box.append(h("h3", {}, "Tóm tắt theo đơn vị"), h("ul", { class: "summary-chips" }, chips));
  if (!ranked.length) return;
  const best = ranked[0];
  const worst = ranked[ranked.length - 1];
  const spread = Math.abs(best.value - worst.value);
  const unit = kpi.unit;
  const tied = (row) => ranked.filter((r) => r.rank === row.rank).length - 1;
  const fact = (row) => [h("strong", {}, row.unit_name), ` ${formatValue(row.value, unit)}`,
    tied(row) ? h("span", { class: "muted" }, ` (và ${tied(row)} đơn vị đồng hạng)`) : null];
  box.append(h("dl", { class: "facts" },
    h("div", {}, h("dt", {}, "Tốt nhất"), h("dd", {}, fact(best))),
    h("div", {}, h("dt", {}, "Kém nhất"), h("dd", {}, fact(worst))),
    h("div", {}, h("dt", {}, "Chênh lệch"), h("dd", {}, unit === "%" ? `${formatNumber(spread, 1)} điểm %` : formatValue(spread, unit))),
    h("div", {}, h("dt", {}, "Đạt mục tiêu"), h("dd", {}, `${counts.green || 0}/${data.items.length} đơn vị`))));
}

function showUnitInChart(code) {
  $("#series-unit").value = code;
  loadSeries();
  $("#series-panel").scrollIntoView({ block: "nearest" });
}

function loadSeries() {
  const panel = $("#series-panel");
  const kpi = selectedKpi();
  const unit = $("#series-unit").value || state.scope.code;
  const { from, to } = state.period;
  return run("series", panel, "series-message", async () => {
    if (kpi.kind === "snapshot") {
      return () => {
        clear($("#series-chart"));
        clear($("#series-table"));
        panel.dataset.kpi = kpi.id;
        $("#series-title").textContent = "Diễn biến theo ngày";
        message("series-message", "Chỉ tiêu này là số liệu hiện tại (ảnh chụp tình trạng dự án), không có chuỗi theo thời gian.", "info");
      };
    }
    const data = await api(`/v1/kpis/${encodeURIComponent(kpi.id)}/series`, { unit, from, to, granularity: "day" });
    return () => renderSeries(panel, data, kpi);
  });
}

function renderSeries(panel, data, kpi) {
  panel.dataset.kpi = data.kpi;
  panel.dataset.unit = data.unit;
  const digits = digitsFor(kpi.unit);
  $("#series-title").textContent = `Diễn biến theo ngày – ${data.unit_name}`;
  const withData = data.items.filter((p) => p.value !== null).length;
  const chart = clear($("#series-chart"));
  chart.append(seriesChart(data.items, {
    unit: kpi.unit, digits, target: kpi.target, direction: kpi.direction,
    targetLabel: kpi.target === null ? "" : `Mục tiêu ${targetText(kpi, kpi.target)}`,
    title: `${kpi.name_vi}, ${data.unit_name}, theo ngày`,
    description: `${withData} trên ${data.items.length} ngày có dữ liệu; ngày không có dữ liệu để trống.` +
      (kpi.target !== null ? ` Mục tiêu ${targetText(kpi, kpi.target)}.` : ""),
  }));
  chart.append(h("p", { class: "chart-note" }, `${withData}/${data.items.length} ngày có dữ liệu.`));
  const table = clear($("#series-table"));
  table.append(h("table", { class: "data compact" },
    h("caption", { class: "visually-hidden" }, `${kpi.name_vi} theo ngày, ${data.unit_name}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Ngày"), h("th", { scope: "col", class: "num" }, `Giá trị (${unitVi(kpi.unit)})`), h("th", { scope: "col" }, "Trạng thái"))),
    h("tbody", {}, data.items.map((p) => h("tr", { "data-testid": "series-row" },
      h("th", { scope: "row" }, formatDate(splitIso(p.start).date)),
      h("td", { class: "num", "data-testid": "series-value" }, formatNumber(p.value, digits)),
      h("td", {}, badge(p.status)))))));
}

// ---- 6. unit scorecard ----------------------------------------------------------------------

function loadScorecard() {
  const panel = $("#unit-card");
  const code = $("#unit-select").value;
  const { from, to } = state.period;
  return run("scorecard", panel, "scorecard-message", async () => {
    const data = await api(`/v1/units/${encodeURIComponent(code)}/scorecard`, { from, to });
    return () => renderScorecard(panel, data);
  });
}

function renderScorecard(panel, data) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  panel.dataset.unit = data.unit;
  const body = clear($("#scorecard-body"));
  const groups = GROUPS.map((g) => ({ ...g, rows: data.items.filter((r) => groupOf(state.kpiById.get(r.kpi)) === g.id) }))
    .filter((g) => g.rows.length);
  body.append(h("table", { class: "data scorecard-table", "data-testid": "scorecard-table" },
    h("caption", { class: "visually-hidden" }, `Thẻ điểm của ${data.unit_name}`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Chỉ tiêu"),
      h("th", { scope: "col", class: "num" }, "Giá trị"),
      h("th", { scope: "col", class: "num" }, "Mục tiêu"),
      h("th", { scope: "col" }, "Trạng thái"),
      h("th", { scope: "col", class: "num" }, "Kỳ trước"),
      h("th", { scope: "col", class: "num" }, "Thay đổi"))),
    groups.map((g) => h("tbody", {},
      h("tr", { class: "group-row" }, h("th", { scope: "rowgroup", colspan: "6" }, g.vi, h("span", { class: "en", lang: "en" }, g.en))),
      g.rows.map((row) => {
        const kpi = state.kpiById.get(row.kpi);
        return h("tr", { "data-testid": "scorecard-row", "data-kpi": row.kpi },
          h("th", { scope: "row", class: "kpi-cell" }, row.name_vi, h("span", { class: "en", lang: "en" }, row.name_en)),
          h("td", { class: "num", "data-testid": "scorecard-value" }, formatValue(row.value, row.unit_of_measure)),
          h("td", { class: "num" }, row.target === null ? h("span", { class: "muted" }, "—") : targetText(kpi, row.target)),
          h("td", {}, badge(row.status, "scorecard-status")),
          h("td", { class: "num" }, formatValue(row.previous_value, row.unit_of_measure)),
          h("td", { class: "num" }, kpi && kpi.kind === "snapshot" ? h("span", { class: "muted" }, "hiện tại") : changeNode(row.change, kpi, "scorecard-change")));
      })))));
}

// ---- 8. overdue dossiers and projects (now, not period-bound) --------------------------------

function loadOverdue() {
  const panel = $("#overdue-panel");
  return run("overdue", panel, "overdue-message", async () => {
    const data = await api("/v1/dossiers/overdue", { unit: state.scope.code });
    return () => renderOverdue(data);
  });
}

function renderOverdue(data) {
  $("#now-asof").textContent = `cập nhật lúc ${formatInstant(data.as_of, state.anchor.offset)}`;
  const rows = [...data.per_unit].sort((a, b) => b.overdue - a.overdue || b.open - a.open || a.unit_name.localeCompare(b.unit_name, "vi"));
  const total = rows.reduce((acc, r) => ({ open: acc.open + r.open, overdue: acc.overdue + r.overdue }), { open: 0, overdue: 0 });
  const maxOpen = Math.max(1, ...rows.map((r) => r.open));
  const body = clear($("#overdue-body"));
  if (!rows.length) {
    body.append(h("p", { class: "empty" }, "Không có hồ sơ đang giải quyết."));
    return;
  }
  body.append(
    h("p", { class: "kpi-inline" },
      h("span", { class: ["big-number", total.overdue ? "is-bad" : "is-good"], "data-testid": "overdue-total" }, formatNumber(total.overdue, 0)),
      h("span", {}, ` hồ sơ quá hạn trên ${formatNumber(total.open, 0)} hồ sơ đang giải quyết`)),
    h("p", { class: "mini-legend", "aria-hidden": "true" },
      h("span", { class: "swatch swatch-open" }), "Đang giải quyết, còn trong hạn", h("span", { class: "swatch swatch-overdue" }), "Quá hạn"),
    h("div", { class: "table-scroll" }, h("table", { class: "data compact", "data-testid": "overdue-table" },
      h("caption", { class: "visually-hidden" }, "Hồ sơ đang giải quyết và quá hạn theo đơn vị"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Đơn vị"),
        h("th", { scope: "col", class: "num" }, "Đang giải quyết"),
        h("th", { scope: "col", class: "num" }, "Quá hạn"),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Biểu đồ")))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-testid": "overdue-row", "data-unit": r.unit },
        h("th", { scope: "row" }, r.unit_name),
        h("td", { class: "num", "data-testid": "overdue-open" }, formatNumber(r.open, 0)),
        h("td", { class: ["num", r.overdue ? "is-bad" : null], "data-testid": "overdue-count" }, formatNumber(r.overdue, 0)),
        h("td", { class: "bar-cell" }, stackBar(r.open, r.overdue, maxOpen))))),
      h("tfoot", {}, h("tr", {},
        h("th", { scope: "row" }, "Tổng"),
        h("td", { class: "num" }, formatNumber(total.open, 0)),
        h("td", { class: "num" }, formatNumber(total.overdue, 0)),
        h("td", {}))))),
  );
  if (data.items.length) {
    const top = [...data.items].sort((a, b) => b.overdue_hours - a.overdue_hours).slice(0, 5);
    body.append(h("h4", { class: "sub-title" }, "Hồ sơ quá hạn lâu nhất"),
      h("table", { class: "data compact" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Mã hồ sơ"), h("th", { scope: "col" }, "Đơn vị"), h("th", { scope: "col" }, "Lĩnh vực"), h("th", { scope: "col", class: "num" }, "Quá hạn"))),
        h("tbody", {}, top.map((d) => h("tr", {},
          h("th", { scope: "row" }, h("code", {}, d.dossier_id)),
          h("td", {}, state.units.get(d.unit)?.name || d.unit),
          h("td", {}, SECTOR_VI[d.sector] || d.sector),
          h("td", { class: "num is-bad" }, d.overdue_hours >= 48 ? `${formatNumber(d.overdue_hours / 24, 1)} ngày` : `${formatNumber(d.overdue_hours, 1)} giờ`))))));
  }
}

function stackBar(open, overdue, max) {
  const onTime = Math.max(0, open - overdue);
  const w = (v) => ((v / max) * 100).toFixed(2);
  return s("svg", { class: "bar bar-stack", viewBox: "0 0 100 8", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    s("rect", { class: "bar-track", x: "0", y: "0", width: "100", height: "8", rx: "2" }),
    s("rect", { class: "bar-open", x: "0", y: "0", width: w(onTime), height: "8" }),
    s("rect", { class: "bar-overdue", x: w(onTime), y: "0", width: w(overdue), height: "8" }));
}

function loadProjects() {
  const panel = $("#projects-panel");
  return run("projects", panel, "projects-message", async () => {
    const data = await api("/v1/projects", { unit: state.scope.code });
    return () => renderProjects(data);
  });
}

function bandStatus(kpi, value) {
  if (value === null || value === undefined) return "no_data";
  if (!kpi || !kpi.bands) return "no_target";
  const { green, red } = kpi.bands;
  if (kpi.direction === "lower") return value <= green ? "green" : value > red ? "red" : "amber";
  return value >= green ? "green" : value < red ? "red" : "amber";
}

function renderProjects(data) {
  const body = clear($("#projects-body"));
  const total = STAGES.reduce((n, st) => n + (data.counts_by_stage[st.id] || 0), 0);
  const rateKpi = state.kpiById.get("project_on_schedule_rate");
  const rateStatus = bandStatus(rateKpi, data.on_schedule_rate);
  body.append(h("div", { class: "kpi-inline" },
    h("span", { class: "big-number", "data-testid": "projects-rate" }, formatValue(data.on_schedule_rate, "%")),
    h("span", {}, " dự án đang thực hiện đúng tiến độ "),
    badge(rateStatus, "projects-rate-status"),
    rateKpi && rateKpi.target !== null ? h("span", { class: "muted" }, ` · mục tiêu ${targetText(rateKpi, rateKpi.target)}`) : null));

  let x = 0;
  const stack = s("svg", { class: "stage-bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" });
  STAGES.forEach((st, i) => {
    const n = data.counts_by_stage[st.id] || 0;
    if (!n || !total) return;
    const w = (n / total) * 100;
    stack.append(s("rect", { class: `stage-${i}`, x: x.toFixed(2), y: "0", width: w.toFixed(2), height: "10" }));
    x += w;
  });
  body.append(stack);

  const schedule = {};
  for (const p of data.items) schedule[p.schedule_status] = (schedule[p.schedule_status] || 0) + 1;
  body.append(h("table", { class: "data compact", "data-testid": "projects-table" },
    h("caption", { class: "visually-hidden" }, "Số dự án CNTT theo giai đoạn"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Giai đoạn"), h("th", { scope: "col", class: "num" }, "Số dự án"))),
    h("tbody", {}, STAGES.map((st, i) => h("tr", { "data-testid": "project-stage", "data-stage": st.id },
      h("th", { scope: "row" }, h("span", { class: ["swatch", `stage-${i}`], "aria-hidden": "true" }), st.vi, h("span", { class: "en", lang: "en" }, st.en)),
      h("td", { class: "num", "data-testid": "project-stage-count" }, formatNumber(data.counts_by_stage[st.id] || 0, 0))))),
    h("tfoot", {}, h("tr", {}, h("th", { scope: "row" }, "Tổng"), h("td", { class: "num" }, formatNumber(total, 0))))));
  if (!data.next_cursor && data.items.length) {
    body.append(h("p", { class: "schedule-line" }, h("strong", {}, "Tình trạng tiến độ: "),
      Object.entries(SCHEDULE_VI).filter(([k]) => schedule[k]).map(([k, vi]) => `${vi} ${schedule[k]}`).join(" · ")));
  }
}

// ---- 9. open alerts: shown only when the endpoint exists (200) ---------------------------------

async function loadAlerts() {
  const section = $("#alerts");
  const token = (state.tokens.alerts = (state.tokens.alerts || 0) + 1);
  section.dataset.state = "loading";
  updateMainState();
  let shown = false;
  try {
    const data = await api("/v1/alerts", { state: "open" });
    if (state.tokens.alerts !== token) return;
    renderAlerts(data);
    shown = true;
  } catch (err) {
    if (state.tokens.alerts !== token) return;
    if (err instanceof ApiError && err.status === 401) {
      expire(err);
      return;
    }
    // 404: the alerts endpoint is not deployed yet; any other failure: no panel either
  }
  section.hidden = !shown;
  $("#nav-alerts").hidden = !shown;
  section.dataset.state = shown ? "ready" : "absent";
  updateMainState();
}

function renderAlerts(data) {
  const items = Array.isArray(data) ? data : (data.items || []);
  const body = clear($("#alerts-body"));
  if (!items.length) {
    body.append(h("p", { class: "notice notice-ok" }, "Không có cảnh báo nào đang mở."));
    return;
  }
  body.append(h("table", { class: "data compact", "data-testid": "alerts-table" },
    h("caption", { class: "visually-hidden" }, "Cảnh báo đang mở"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Chỉ tiêu"), h("th", { scope: "col" }, "Đơn vị"), h("th", { scope: "col" }, "Mức"),
      h("th", { scope: "col", class: "num" }, "Giá trị"), h("th", { scope: "col", class: "num" }, "Ngưỡng"), h("th", { scope: "col" }, "Từ lúc"))),
    h("tbody", {}, items.map((a) => {
      const kpi = state.kpiById.get(a.kpi);
      const unit = kpi ? kpi.unit : "";
      const level = a.status || a.severity || a.level;
      return h("tr", { "data-testid": "alert-row" },
        h("th", { scope: "row" }, kpi ? kpi.name_vi : (a.kpi || a.title || "—")),
        h("td", {}, a.unit_name || state.units.get(a.unit)?.name || a.unit || "—"),
        h("td", {}, STATUS[level] ? badge(level) : (level || "—")),
        h("td", { class: "num" }, formatValue(a.value ?? null, unit)),
        h("td", { class: "num" }, formatValue(a.threshold ?? a.target ?? null, unit)),
        h("td", {}, formatInstant(a.opened_at || a.since || a.started_at || a.time, state.anchor.offset)));
    }))));
}

// ---- 2. periods -----------------------------------------------------------------------------

function buildPeriodChoices(anchorCard) {
  const to = splitIso(anchorCard.to);
  state.anchor = { end: to.date, offset: to.offset };
  const select = $("#month-select");
  clear(select).append(h("option", { value: "" }, "— Chọn tháng —"));
  const lastDay = addDays(to.date, -1);
  let month = `${lastDay.slice(0, 7)}-01`;
  for (let i = 0; i < 13; i += 1) {
    const [y, m] = month.split("-");
    select.append(h("option", { value: month }, `Tháng ${Number(m)}/${y}${i === 0 ? " (đến nay)" : ""}`));
    month = addMonths(month, -1);
  }
}

function choosePeriod() {
  const { end, offset } = state.anchor;
  const month = $("#month-select").value;
  if (month) {
    state.period = { from: startOfDay(month, offset), to: startOfDay(addMonths(month, 1), offset) };
  } else {
    const checked = document.querySelector("input[name='range']:checked");
    const days = Number(checked ? checked.value : 30);
    state.period = { from: startOfDay(addDays(end, -days), offset), to: startOfDay(end, offset) };
  }
  const toolbar = $("#toolbar");
  toolbar.dataset.from = state.period.from;
  toolbar.dataset.to = state.period.to;
  $("#period-text").textContent = formatPeriod(state.period.from, state.period.to);
  for (const el of document.querySelectorAll(".period-inline")) el.textContent = formatPeriod(state.period.from, state.period.to);
  $("#period-previous").textContent = "";
}

function loadPeriodViews() {
  choosePeriod();
  const main = $("#main");
  main.dataset.generation = String(Number(main.dataset.generation || 0) + 1);
  loadOverview();
  loadScore();
  loadRanking();
  loadSeries();
  loadScorecard();
}

function loadNowViews() {
  loadOverdue();
  loadProjects();
  loadAlerts();
}

// ---- 10. CSV exports --------------------------------------------------------------------------

async function downloadCsv(kind, button) {
  const { from, to } = state.period;
  const sources = {
    "scorecard-overview": [`/v1/units/${encodeURIComponent(state.scope.code)}/scorecard`, { from, to }],
    score: ["/v1/score", { level: "district", from, to }],
    ranking: [`/v1/kpis/${encodeURIComponent($("#kpi-select").value)}/ranking`, { level: "district", from, to }],
    "scorecard-unit": [`/v1/units/${encodeURIComponent($("#unit-select").value)}/scorecard`, { from, to }],
  };
  const [path, params] = sources[kind];
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "Đang tải…";
  try {
    const response = await request(path, params, "text/csv");
    const blob = await response.blob();
    const disposition = response.headers.get("content-disposition") || "";
    const base = (/filename="?([^";]+)"?/.exec(disposition) || [null, "export.csv"])[1].replace(/\.csv$/, "");
    const period = `${splitIso(from).date}_${addDays(splitIso(to).date, -1)}`;
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `${base}_${period}.csv`, class: "visually-hidden" });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) expire(err);
    else showGlobalError(`Không tải được CSV – ${describe(err)}`);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// ---- 1. key, session, start ------------------------------------------------------------------

function showGlobalError(text) {
  const box = $("#global-error");
  clear(box);
  if (!text) {
    box.hidden = true;
    return;
  }
  box.append(h("p", {}, text),
    h("button", { type: "button", class: "button button-small button-ghost", onclick: () => showGlobalError("") }, "Đóng"));
  box.hidden = false;
}

function resetDashboard() {
  state.tokens = {};
  for (const id of ["overview-summary", "overview-tiles", "score-body", "score-footnote", "ranking-body", "ranking-summary", "series-chart",
    "series-table", "scorecard-body", "overdue-body", "projects-body", "alerts-body", "kpi-about"]) clear(document.getElementById(id));
  for (const el of document.querySelectorAll("[data-state]")) el.dataset.state = "idle";
  $("#alerts").hidden = true;
}

function showSignIn(errorText = "") {
  document.body.classList.remove("signed-in");
  $("#main").hidden = true;
  $("#toolbar").hidden = true;
  $("#session").hidden = true;
  $("#signin").hidden = false;
  const err = $("#signin-error");
  err.textContent = errorText;
  err.hidden = !errorText;
  $("#key-input").value = "";
  $("#key-input").focus();
}

function signOut(errorText = "") {
  sessionStorage.removeItem(KEY_STORAGE);
  state.key = null;
  resetDashboard();
  showGlobalError("");
  showSignIn(errorText);
}

function expire(err) {
  signOut(`Khóa không còn hợp lệ – ${describe(err)}`);
}

function unitLabel(u) {
  const until = u.valid_to && u.valid_to < state.anchor.end ? ` (đến ${formatDate(u.valid_to)})` : "";
  const since = u.valid_from && u.valid_from > addDays(state.anchor.end, -1) ? ` (từ ${formatDate(u.valid_from)})` : "";
  return `${u.full_name}${until}${since}`;
}

function fillSelect(select, options, value) {
  clear(select);
  for (const o of options) select.append(h("option", { value: o.value }, o.label));
  if (value !== undefined) select.value = value;
}

async function start(key) {
  state.key = key;
  const [all, kpis] = await Promise.all([api("/v1/units"), api("/v1/kpis")]);
  if (!all.items.length) throw new ApiError(0, "Không có đơn vị", "Khóa này không có đơn vị nào trong phạm vi.");
  const districts = await api("/v1/units", { level: "district" });
  state.scope = all.items[0];
  state.units = new Map(all.items.map((u) => [u.code, u]));
  state.districts = districts.items;
  state.kpis = kpis.items;
  state.kpiById = new Map(kpis.items.map((k) => [k.id, k]));
  // the server's "last 30 days" anchors every period choice (its clock, not the browser's)
  const anchorCard = await api(`/v1/units/${encodeURIComponent(state.scope.code)}/scorecard`);
  buildPeriodChoices(anchorCard);

  sessionStorage.setItem(KEY_STORAGE, key);
  $("#scope-name").textContent = state.scope.full_name || state.scope.name;
  $("#overview-unit").textContent = state.scope.level === 1 ? "toàn tỉnh" : state.scope.name;

  const computable = state.kpis.filter((k) => k.kind !== "not_computable");
  const kpiSelect = $("#kpi-select");
  clear(kpiSelect);
  for (const group of GROUPS) {
    const members = computable.filter((k) => groupOf(k) === group.id);
    if (!members.length) continue;
    kpiSelect.append(h("optgroup", { label: group.vi }, members.map((k) => h("option", { value: k.id }, `${k.name_vi} (${unitVi(k.unit)})`))));
  }
  kpiSelect.value = computable[0].id;

  const scopeOption = { value: state.scope.code, label: state.scope.level === 1 ? `Toàn tỉnh – ${state.scope.full_name}` : state.scope.full_name };
  const districtOptions = state.districts.filter((u) => u.code !== state.scope.code).map((u) => ({ value: u.code, label: unitLabel(u) }));
  fillSelect($("#series-unit"), [scopeOption, ...districtOptions], state.scope.code);
  fillSelect($("#unit-select"), [scopeOption, ...districtOptions], districtOptions.length ? districtOptions[0].value : state.scope.code);

  $("#signin").hidden = true;
  $("#toolbar").hidden = false;
  $("#session").hidden = false;
  $("#main").hidden = false;
  document.body.classList.add("signed-in");
  renderLegend();
  renderKpiAbout();
  loadPeriodViews();
  loadNowViews();
}

function renderLegend() {
  const legend = clear($("#status-legend"));
  for (const st of ["green", "amber", "red", "no_data", "no_target"]) {
    legend.append(h("li", {}, badge(st), h("span", { class: "en", lang: "en" }, STATUS[st].en)));
  }
}

async function signIn(key) {
  const button = $("#key-submit");
  button.disabled = true;
  try {
    await start(key);
    showGlobalError("");
  } catch (err) {
    state.key = null;
    const refused = err instanceof ApiError && (err.status === 401 || err.status === 403);
    if (refused) sessionStorage.removeItem(KEY_STORAGE);
    showSignIn(`Không đăng nhập được – ${describe(err)}`);
    // a server or network failure says nothing about the key: keep it for "Đăng nhập" again
    if (!refused) $("#key-input").value = key;
  } finally {
    button.disabled = false;
  }
}

function wire() {
  $("#signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) {
      showSignIn("Hãy dán khóa truy cập.");
      return;
    }
    signIn(key);
  });
  $("#sign-out").addEventListener("click", () => signOut());
  for (const radio of document.querySelectorAll("input[name='range']")) {
    radio.addEventListener("change", () => {
      $("#month-select").value = "";
      loadPeriodViews();
    });
  }
  $("#month-select").addEventListener("change", (event) => {
    const picked = Boolean(event.target.value);
    for (const radio of document.querySelectorAll("input[name='range']")) radio.checked = !picked && radio.value === "30";
    loadPeriodViews();
  });
  $("#refresh").addEventListener("click", () => {
    loadPeriodViews();
    loadNowViews();
  });
  $("#kpi-select").addEventListener("change", () => {
    renderKpiAbout();
    loadRanking();
    loadSeries();
  });
  $("#series-unit").addEventListener("change", () => loadSeries());
  $("#unit-select").addEventListener("change", () => loadScorecard());
  for (const button of document.querySelectorAll("[data-csv]")) {
    button.addEventListener("click", () => downloadCsv(button.dataset.csv, button));
  }
}

wire();
const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) signIn(saved);
else showSignIn();
