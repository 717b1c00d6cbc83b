// Overview of the scope unit, the composite score and the unit scorecard.

import { $, clear, h, icon } from "./dom.js";
import { STATUS, digitsFor, formatDate, formatNumber, formatPeriod, formatValue, unitVi } from "./format.js";
import { api, run, state } from "./api.js";
import { GROUPS, STATUSES, badge, basisMark, basisNotes, changeNode, groupOf, kpiName, targetText, withBar } from "./widgets.js";
import { LEVEL_EN, choice, homeDistrictName, levelTitle } from "./units.js";

const SCORE_GROUPS_VI = {
  publicity: "Công khai, minh bạch",
  progress: "Tiến độ, kết quả giải quyết",
  digitisation: "Số hóa hồ sơ",
  online_services: "Dịch vụ công trực tuyến",
  online_payment: "Thanh toán trực tuyến",
  satisfaction: "Mức độ hài lòng",
};

/** A unit's name with its basis mark. */
export function unitName(row, level, testid) {
  return [h("span", { "data-testid": testid }, row.unit_name), basisMark(row.basis, level, `${testid}-basis`)];
}

/** For a commune, the district it belonged to (before the reform) or was formed mostly from. */
export function unitContext(row, level) {
  const unit = choice(row.unit_key)?.unit;
  const home = level === "commune" && state.lists ? homeDistrictName(unit, state.lists) : "";
  return home ? h("span", { class: "cell-context" }, home) : null;
}

/** A notice for reorganisations inside the period (or the previous one). */
export function reformNotice(reforms) {
  if (!reforms || !reforms.length) return null;
  const days = reforms.map(formatDate).join(", ");
  return h("p", { class: "notice notice-info reform-notice", "data-testid": "reform-notice" },
    `Sắp xếp đơn vị hành chính có hiệu lực ngày ${days} nằm trong kỳ này hoặc kỳ trước: số liệu của một đơn vị trước khi nó được thành lập là số liệu tính lại từ các đơn vị cũ hợp thành (đánh dấu * hoặc ≈). `,
    h("span", { class: "en", lang: "en" }, `A reorganisation took effect on ${reforms.join(", ")}: values before a unit existed are restated.`));
}

// ---- overview of the scope unit -------------------------------------------------------------

export function loadOverview() {
  const panel = $("#overview");
  const { from, to, day } = state.period;
  return run("overview", panel, "overview-message", async () => {
    const data = await api(`/v1/units/${encodeURIComponent(state.scope.code)}/scorecard`, { from, to, as_of: day });
    return () => renderOverview(panel, data);
  });
}

function renderOverview(panel, data) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  panel.dataset.basis = data.basis;
  $("#overview-period").textContent = formatPeriod(data.from, data.to);

  const counts = Object.fromEntries(STATUSES.map((st) => [st, 0]));
  for (const row of data.items) counts[row.status] = (counts[row.status] || 0) + 1;
  const withTarget = counts.green + counts.amber + counts.red;
  const summary = clear($("#overview-summary"));
  summary.append(
    h("p", { class: "summary-lead" },
      h("strong", { "data-testid": "summary-green" }, String(counts.green)), ` / ${withTarget} chỉ tiêu có mục tiêu và có dữ liệu đã đạt mục tiêu`,
      h("span", { class: "en", lang: "en" }, ` ${counts.green} of ${withTarget} indicators with a target and data are on target`)),
    h("ul", { class: "summary-chips" },
      ...STATUSES.map((st) =>
        h("li", { class: ["chip", `chip-${st}`] }, icon(STATUS[st].icon), h("span", {}, STATUS[st].vi), h("strong", {}, String(counts[st]))))),
  );
  const notes = basisNotes([data.basis, data.previous_basis], "province", { marks: false });
  if (notes.length) summary.append(h("div", { class: "footnote basis-footnote" }, notes));

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

// ---- composite score ------------------------------------------------------------------------

export function scoreParams() {
  const { from, to, day } = state.period;
  return { level: state.level, from, to, as_of: day };
}

export function loadScore() {
  const panel = $("#score");
  const params = scoreParams();
  return run("score", panel, "score-message", async () => {
    const data = await api("/v1/score", params);
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
  panel.dataset.level = data.level;
  panel.dataset.asOf = data.as_of;
  $("#score-level").textContent = levelTitle(data.level, data.as_of, data.items.length);
  $("#score-level-en").textContent = LEVEL_EN[data.level] || data.level;
  const body = clear($("#score-body"));
  const foot = clear($("#score-footnote"));
  if (!data.items.length) {
    body.append(h("p", { class: "empty" }, "Không có đơn vị nào trong phạm vi."));
    return;
  }
  const groups = data.items[0].groups.map((g) => ({ id: g.group, name: g.name, max: g.max_points }));
  const commonNc = data.items[0].not_computable.join(",");

  const table = h("table", { class: "data score-table", "data-testid": "score-table" },
    h("caption", { class: "visually-hidden" }, `Chỉ số tổng hợp của ${levelTitle(data.level, data.as_of)}, xếp hạng từ cao xuống thấp`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col", class: "num" }, "Hạng"),
      h("th", { scope: "col" }, "Đơn vị"),
      h("th", { scope: "col", class: "num" }, "Điểm", h("span", { class: "th-sub" }, "thang 100")),
      h("th", { scope: "col", class: "num" }, "Điểm đạt", h("span", { class: "th-sub" }, "/ tối đa có dữ liệu")),
      groups.map((g) => h("th", { scope: "col", class: "num group-col" }, SCORE_GROUPS_VI[g.id] || g.name, h("span", { class: "th-sub" }, `${g.max} điểm`))),
      h("th", { scope: "col" }, "Chỉ tiêu chưa tính điểm", h("span", { class: "th-sub" }, "không có dữ liệu / không tính được")))),
    h("tbody", {}, data.items.map((row) => {
      const sameNc = row.not_computable.join(",") === commonNc;
      return h("tr", { "data-testid": "score-row", "data-unit": row.unit, "data-key": row.unit_key, "data-basis": row.basis },
        h("td", { class: "num rank", "data-testid": "score-rank" }, row.rank === null ? "—" : String(row.rank)),
        h("th", { scope: "row" }, unitName(row, data.level, "score-unit"), unitContext(row, data.level)),
        h("td", { class: "num score-cell" },
          withBar(formatNumber(row.score, 1), row.score === null ? null : row.score / 100, "score", "score-value")),
        h("td", { class: "num", "data-testid": "score-points" },
          h("span", {}, formatNumber(row.points, 1)), h("span", { class: "cell-sub" }, `/${formatNumber(row.max_points_with_data, 0)}`)),
        row.groups.map((g) => h("td", { class: "num", "data-testid": `score-group-${g.group}` }, groupCell(g))),
        h("td", { class: "gaps-cell", "data-testid": "score-missing" },
          row.no_data.length ? h("details", { class: "tags-more" }, h("summary", {}, `${row.no_data.length} chỉ tiêu không có dữ liệu`),
            h("ul", { class: "tags" }, row.no_data.map((id) => h("li", { class: "tag tag-nodata", "data-kpi": id }, kpiName(id))))) : null,
          sameNc
            ? h("span", { class: "nc-note" }, `+ ${row.not_computable.length} chỉ tiêu không tính được¹`)
            : h("ul", { class: "tags" }, row.not_computable.map((id) => h("li", { class: "tag tag-nc" }, kpiName(id))))));
    })));
  body.append(h("div", { class: "table-scroll" }, table));

  const nc = [];
  for (const g of data.items[0].groups) {
    for (const ind of g.indicators) if (ind.status === "not_computable") nc.push(`${kpiName(ind.kpi)} (${formatNumber(ind.max_points, 0)} điểm)`);
  }
  foot.append(...[
    reformNotice(data.reforms),
    ...basisNotes(data.items.map((r) => r.basis), data.level),
    h("p", {}, h("strong", {}, "Cách tính: "),
      "Điểm được chuẩn hóa trên các chỉ tiêu có dữ liệu: Điểm = 100 × điểm đạt được ÷ tổng điểm tối đa của các chỉ tiêu có dữ liệu trong kỳ. ",
      "Chỉ tiêu không có dữ liệu không bị tính bằng 0 mà được loại khỏi mẫu số. Cột nhóm ghi điểm đạt / điểm tối đa của các chỉ tiêu có dữ liệu trong nhóm. ",
      h("span", { class: "en", lang: "en" }, "The score is normalised over the indicators that had data (100 × points earned ÷ points available from indicators with data); an indicator without data is left out, not counted as zero.")),
    h("p", {}, "¹ Không tính được từ dữ liệu sự kiện (chưa có nguồn số liệu): ", nc.join("; "), "."),
  ].filter(Boolean));
}

// ---- unit scorecard -------------------------------------------------------------------------

export function scorecardTarget() {
  const key = $("#unit-select").value;
  const picked = choice(key) || { code: state.scope.code, asOf: state.period.day };
  return { key, code: picked.code, asOf: picked.asOf };
}

export function loadScorecard() {
  const panel = $("#unit-card");
  const { key, code, asOf } = scorecardTarget();
  const { from, to } = state.period;
  return run("scorecard", panel, "scorecard-message", async () => {
    const data = await api(`/v1/units/${encodeURIComponent(code)}/scorecard`, { from, to, as_of: asOf });
    return () => renderScorecard(panel, data, key);
  });
}

function validity(data) {
  const a = data.unit_valid_from ? `từ ${formatDate(data.unit_valid_from)}` : "";
  const b = data.unit_valid_to ? `đến ${formatDate(data.unit_valid_to)}` : "";
  return [a, b].filter(Boolean).join(" ");
}

function renderScorecard(panel, data, key) {
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  panel.dataset.unit = data.unit;
  panel.dataset.key = key;
  panel.dataset.basis = data.basis;
  const unit = choice(key)?.unit;
  const level = unit && unit.level === 3 ? "commune" : "province";
  const body = clear($("#scorecard-body"));
  const period = validity(data);
  body.append(h("p", { class: "scorecard-head" },
    h("strong", { "data-testid": "scorecard-unit" }, unit ? unit.full_name : data.unit_name),
    h("span", { class: "muted" }, ` · mã ${data.unit}${period ? ` · tồn tại ${period}` : ""}`)));
  const reform = reformNotice(data.reforms);
  if (reform) body.append(reform);
  const notes = basisNotes([data.basis, data.previous_basis], level);
  if (notes.length) body.append(h("div", { class: "footnote basis-footnote", "data-testid": "scorecard-basis" }, notes));
  const groups = GROUPS.map((g) => ({ ...g, rows: data.items.filter((r) => groupOf(state.kpiById.get(r.kpi)) === g.id) }))
    .filter((g) => g.rows.length);
  body.append(h("table", { class: "data scorecard-table", "data-testid": "scorecard-table" },
    h("caption", { class: "visually-hidden" }, `Thẻ điểm của ${data.unit_name}`),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Chỉ tiêu"),
      h("th", { scope: "col", class: "num" }, "Giá trị", basisMark(data.basis, level)),
      h("th", { scope: "col", class: "num" }, "Mục tiêu"),
      h("th", { scope: "col" }, "Trạng thái"),
      h("th", { scope: "col", class: "num" }, "Kỳ trước", basisMark(data.previous_basis, level)),
      h("th", { scope: "col", class: "num" }, "Thay đổi"))),
    groups.map((g) => h("tbody", {},
      h("tr", { class: "group-row" }, h("th", { scope: "rowgroup", colspan: "6" }, g.vi, h("span", { class: "en", lang: "en" }, g.en))),
      g.rows.map((row) => {
        const kpi = state.kpiById.get(row.kpi);
        return h("tr", { "data-testid": "scorecard-row", "data-kpi": row.kpi },
          h("th", { scope: "row", class: "kpi-cell" }, row.name_vi, h("span", { class: "en", lang: "en" }, row.name_en),
            row.note ? h("span", { class: "row-note", lang: "en" }, row.note) : null),
          h("td", { class: "num", "data-testid": "scorecard-value" }, formatValue(row.value, row.unit_of_measure)),
          h("td", { class: "num" }, row.target === null ? h("span", { class: "muted" }, "—") : targetText(kpi, row.target)),
          h("td", {}, badge(row.status, "scorecard-status")),
          h("td", { class: "num", "data-testid": "scorecard-previous" }, formatValue(row.previous_value, row.unit_of_measure)),
          h("td", { class: "num" }, kpi && kpi.kind === "snapshot" ? h("span", { class: "muted" }, "hiện tại") : changeNode(row.change, kpi, "scorecard-change")));
      })))));
}
