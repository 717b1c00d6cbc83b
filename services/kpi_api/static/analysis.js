// Ranking of the chosen level's units by one KPI, and the KPI's daily series for one unit.

import { $, clear, h } from "./dom.js";
import { digitsFor, formatDate, formatNumber, formatPeriod, formatValue, splitIso, unitVi } from "./format.js";
import { message, run, shared, state } from "./api.js";
import { badge, basisMark, basisNotes, changeNode, statusChips, targetText, threshold, withBar } from "./widgets.js";
import { chartLegend, seriesChart } from "./chart.js";
import { reformNotice, unitContext, unitName } from "./cards.js";
import { LEVEL_EN, choice, levelTitle } from "./units.js";

export function selectedKpi() {
  return state.kpiById.get($("#kpi-select").value);
}

export function renderKpiAbout() {
  const kpi = selectedKpi();
  const about = clear($("#kpi-about"));
  if (!kpi) return;
  const lower = kpi.direction === "lower";
  about.append(...[
    h("span", { class: "about-item" }, lower ? "Thấp hơn là tốt hơn" : "Cao hơn là tốt hơn"),
    h("span", { class: "about-item" }, `Mục tiêu: ${targetText(kpi, kpi.target)}`),
    kpi.bands ? h("span", { class: "about-item" },
      `Ngưỡng: đạt ${lower ? "≤" : "≥"} ${threshold(kpi.bands.green, kpi.unit)}, chưa đạt ${lower ? ">" : "<"} ${threshold(kpi.bands.red, kpi.unit)}`) : null,
    h("span", { class: "about-item" }, `Đơn vị tính: ${unitVi(kpi.unit)}`),
    kpi.description ? h("span", { class: "about-desc en", lang: "en" }, kpi.description) : null,
  ].filter(Boolean));
}

// ---- ranking ---------------------------------------------------------------------------------

export function rankingParams(level = state.level) {
  const { from, to, day } = state.period;
  return { level, from, to, as_of: day };
}

export function loadRanking() {
  const panel = $("#analysis");
  const kpi = selectedKpi();
  const params = rankingParams();
  return run("ranking", panel, "ranking-message", async () => {
    const data = await shared(`/v1/kpis/${encodeURIComponent(kpi.id)}/ranking`, params);
    return () => renderRanking(panel, data, kpi);
  });
}

function renderRanking(panel, data, kpi) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  panel.dataset.kpi = data.kpi;
  panel.dataset.level = data.level;
  panel.dataset.asOf = data.as_of;
  $("#period-previous").textContent = `So với kỳ trước: ${formatPeriod(data.previous_from, data.previous_to)}`;
  $("#ranking-title").textContent = `Xếp hạng ${levelTitle(data.level, data.as_of, data.items.length)} – ${kpi.name_vi}`;
  $("#ranking-level-en").textContent = LEVEL_EN[data.level] || data.level;
  const unit = kpi.unit;
  const digits = digitsFor(unit);
  const max = Math.max(...data.items.map((r) => r.value ?? 0), kpi.target ?? 0, 0);
  const scale = unit === "%" ? 100 : max || 1;
  const unitCaption = unitVi(unit);
  const body = clear($("#ranking-body"));
  const chartable = (row) => state.choices.has(row.unit_key);
  body.append(h("div", { class: "table-scroll" }, h("table", { class: "data ranking-table", "data-testid": "ranking-table" },
    h("caption", { class: "visually-hidden" }, `Xếp hạng ${levelTitle(data.level, data.as_of)} theo ${kpi.name_vi}`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", class: "num" }, "Hạng"),
      h("th", { scope: "col" }, "Đơn vị"),
      h("th", { scope: "col", class: "num" }, "Giá trị", h("span", { class: "th-sub" }, unitCaption)),
      h("th", { scope: "col" }, "Trạng thái"),
      h("th", { scope: "col", class: "num" }, "Kỳ trước", h("span", { class: "th-sub" }, unitCaption)),
      h("th", { scope: "col", class: "num" }, "Thay đổi", h("span", { class: "th-sub" }, unit === "%" ? "điểm %" : unitCaption)))),
    h("tbody", {}, data.items.map((row) => h("tr", { "data-testid": "ranking-row", "data-unit": row.unit, "data-key": row.unit_key, "data-basis": row.basis, "data-previous-basis": row.previous_basis },
      h("td", { class: "num rank", "data-testid": "ranking-rank" }, row.rank === null ? "—" : String(row.rank)),
      h("th", { scope: "row" }, chartable(row)
        ? h("button", { type: "button", class: "link-button", title: "Xem diễn biến của đơn vị này trên biểu đồ", onclick: () => showUnitInChart(row.unit_key) },
          unitName(row, data.level, "ranking-unit"))
        : unitName(row, data.level, "ranking-unit"), unitContext(row, data.level)),
      h("td", { class: "num value-cell" },
        withBar(formatNumber(row.value, digits), row.value === null ? null : row.value / scale, row.status, "ranking-value")),
      h("td", {}, badge(row.status, "ranking-status")),
      h("td", { class: "num" }, h("span", { "data-testid": "ranking-previous" }, formatNumber(row.previous_value, digits)),
        row.previous_value === null ? null : basisMark(row.previous_basis, data.level)),
      h("td", { class: "num" }, changeNode(row.change, kpi, "ranking-change"))))))));
  renderRankingSummary(data, kpi);
  const foot = clear($("#ranking-footnote"));
  foot.append(...[
    reformNotice(data.reforms),
    ...basisNotes([...data.items.map((r) => r.basis), ...data.items.filter((r) => r.previous_value !== null).map((r) => r.previous_basis)], data.level),
    h("p", {}, `Xếp hạng trên ${data.ranked_units} đơn vị có dữ liệu (các đơn vị bằng giá trị được đồng hạng; đơn vị không có dữ liệu không được xếp hạng). ` +
      `Kỳ trước: ${formatPeriod(data.previous_from, data.previous_to)}.`),
    data.note ? h("p", { class: "en", lang: "en" }, data.note) : null,
  ].filter(Boolean));
}

function renderRankingSummary(data, kpi) {
  const box = clear($("#ranking-summary"));
  const counts = {};
  for (const r of data.items) counts[r.status] = (counts[r.status] || 0) + 1;
  const ranked = data.items.filter((r) => r.rank !== null);
  box.append(h("h3", {}, "Tóm tắt theo đơn vị"), statusChips(counts));
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

function showUnitInChart(key) {
  $("#series-unit").value = key;
  loadSeries();
  $("#series-panel").scrollIntoView({ block: "nearest" });
}

// ---- series ----------------------------------------------------------------------------------

export function seriesTarget() {
  const key = $("#series-unit").value;
  const picked = choice(key) || { code: state.scope.code, asOf: state.period.day };
  return { key, code: picked.code, asOf: picked.asOf };
}

export function loadSeries() {
  const panel = $("#series-panel");
  const kpi = selectedKpi();
  const { key, code, asOf } = seriesTarget();
  const { from, to } = state.period;
  return run("series", panel, "series-message", async () => {
    if (kpi.kind === "snapshot") {
      return () => {
        clear($("#series-chart"));
        clear($("#series-table"));
        clear($("#series-legend"));
        panel.dataset.kpi = kpi.id;
        $("#series-title").textContent = "Diễn biến theo ngày";
        message("series-message", "Chỉ tiêu này là số liệu hiện tại (ảnh chụp tình trạng dự án), không có chuỗi theo thời gian.", "info");
      };
    }
    const data = await shared(`/v1/kpis/${encodeURIComponent(kpi.id)}/series`, { unit: code, from, to, granularity: "day", as_of: asOf });
    return () => renderSeries(panel, data, kpi, key);
  });
}

function renderSeries(panel, data, kpi, key) {
  panel.dataset.kpi = data.kpi;
  panel.dataset.unit = data.unit;
  panel.dataset.key = key;
  const unit = choice(key)?.unit;
  const name = unit ? unit.full_name : data.unit_name;
  const digits = digitsFor(kpi.unit);
  $("#series-title").textContent = `Diễn biến theo ngày – ${name}`;
  const withData = data.items.filter((p) => p.value !== null).length;
  const restated = data.items.filter((p) => p.value !== null && p.basis.startsWith("restated")).length;
  const options = { validFrom: data.unit_valid_from, validTo: data.unit_valid_to, target: kpi.target };
  const chart = clear($("#series-chart"));
  chart.append(seriesChart(data.items, {
    ...options, unit: kpi.unit, digits, direction: kpi.direction,
    targetLabel: kpi.target === null ? "" : `Mục tiêu ${targetText(kpi, kpi.target)}`,
    title: `${kpi.name_vi}, ${name}, theo ngày`,
    description: `${withData} trên ${data.items.length} ngày có dữ liệu; ngày không có dữ liệu để trống.` +
      (restated ? ` ${restated} ngày là số liệu tính lại từ các đơn vị cũ${data.unit_valid_from ? ` (trước ngày ${formatDate(data.unit_valid_from)})` : ""}.` : "") +
      (kpi.target !== null ? ` Mục tiêu ${targetText(kpi, kpi.target)}.` : ""),
  }));
  chart.append(h("p", { class: "chart-note" }, `${withData}/${data.items.length} ngày có dữ liệu.`,
    data.unit_valid_from && data.items.length && splitIso(data.items[0].start).date < data.unit_valid_from
      ? ` Đơn vị được thành lập ngày ${formatDate(data.unit_valid_from)}; số liệu trước đó ${data.history === "restated" ? "được tính lại từ các đơn vị cũ hợp thành" : "không có"}.` : "",
    data.note ? h("span", { class: "en", lang: "en" }, ` ${data.note}`) : null));
  const legend = clear($("#series-legend"));
  legend.append(chartLegend(data.items, options));
  const table = clear($("#series-table"));
  table.append(h("table", { class: "data compact" },
    h("caption", { class: "visually-hidden" }, `${kpi.name_vi} theo ngày, ${name}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Ngày"), h("th", { scope: "col", class: "num" }, `Giá trị (${unitVi(kpi.unit)})`), h("th", { scope: "col" }, "Trạng thái"))),
    h("tbody", {}, data.items.map((p) => h("tr", { "data-testid": "series-row" },
      h("th", { scope: "row" }, formatDate(splitIso(p.start).date)),
      h("td", { class: "num" }, h("span", { "data-testid": "series-value" }, formatNumber(p.value, digits)), p.value === null ? null : basisMark(p.basis)),
      h("td", {}, badge(p.status)))))));
}
