// Small renderers shared by the views: status badges, targets, changes, bars, and the marks
// that say a value is restated across the 1 July 2025 reorganisation.

import { h, icon, s } from "./dom.js";
import { STATUS, digitsFor, formatNumber, formatValue, unitVi } from "./format.js";
import { state } from "./api.js";

export const GROUPS = [
  { id: "services", vi: "Dịch vụ công, thủ tục hành chính (QĐ 766)", en: "Public services and administrative procedures" },
  { id: "documents", vi: "Văn bản điện tử, dự án CNTT và kênh số", en: "Electronic documents, IT projects, digital take-up" },
  { id: "education", vi: "Giáo dục", en: "Education" },
  { id: "health", vi: "Y tế", en: "Health" },
  { id: "transport", vi: "Giao thông công cộng", en: "Public transport" },
  { id: "culture", vi: "Văn hóa, thư viện, bảo tàng", en: "Culture" },
  { id: "other", vi: "Chỉ tiêu khác", en: "Other indicators" },
];

export const STATUSES = ["green", "amber", "red", "no_data", "no_target"];

export function badge(status, testid) {
  const info = STATUS[status] || { vi: status, icon: "dash" };
  return h("span", { class: ["badge", `badge-${status}`], "data-testid": testid, "data-status": status }, icon(info.icon), info.vi);
}

export function statusChips(counts) {
  return h("ul", { class: "summary-chips" }, STATUSES.filter((st) => counts[st] !== undefined).map((st) =>
    h("li", { class: ["chip", `chip-${st}`] }, icon(STATUS[st].icon), h("span", {}, STATUS[st].vi), h("strong", {}, String(counts[st])))));
}

export function threshold(value, unit) {
  return Number.isInteger(value) ? formatValue(value, unit).replace(/,0+(?=\D|$)/, "") : formatValue(value, unit);
}

export function targetText(kpi, target) {
  if (target === null || target === undefined) return "Chưa đặt mục tiêu";
  const op = kpi && kpi.direction === "lower" ? "≤" : "≥";
  return `${op} ${threshold(target, kpi ? kpi.unit : "")}`;
}

export function changeNode(change, kpi, testid, { long = false } = {}) {
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

export function bar(fraction, status) {
  const width = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return s("svg", { class: ["bar", `bar-${status}`], viewBox: "0 0 100 8", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    s("rect", { class: "bar-track", x: "0", y: "0", width: "100", height: "8", rx: "2" }),
    s("rect", { class: "bar-fill", x: "0", y: "0", width: width.toFixed(2), height: "8", rx: "2" }));
}

export function withBar(text, fraction, status, testid) {
  return h("span", { class: "value-bar" }, fraction === null ? null : bar(fraction, status), h("span", { class: "value-text", "data-testid": testid }, text));
}

export function kpiName(id) {
  const kpi = state.kpiById.get(id);
  return kpi ? kpi.name_vi : id;
}

export function groupOf(kpi) {
  if (!kpi) return "other";
  if ((kpi.source || "").includes("766")) return "services";
  if (!kpi.sectors || !kpi.sectors.length) return "documents";
  return GROUPS.some((g) => g.id === kpi.sectors[0]) ? kpi.sectors[0] : "other";
}

export function bandStatus(kpi, value) {
  if (value === null || value === undefined) return "no_data";
  if (!kpi || !kpi.bands) return "no_target";
  const { green, red } = kpi.bands;
  if (kpi.direction === "lower") return value <= green ? "green" : value > red ? "red" : "amber";
  return value >= green ? "green" : value < red ? "red" : "amber";
}

// ---- restated values ----------------------------------------------------------------------------
// basis (schemas/kpi_api.py): observed | restated_exact | restated_approximate | none. Marks are
// text (never colour alone) and every table that shows one explains it in its footnote.

export const BASIS_MARK = { restated_exact: "*", restated_approximate: "≈", none: "†" };

const BASIS_TEXT = {
  commune: {
    restated_exact: ["số liệu tính lại từ các xã, phường cũ đã hợp thành đơn vị (chính xác)", "restated from the communes it was formed from"],
    restated_approximate: ["số liệu tính lại, gần đúng: gồm một phần của xã cũ bị chia tách", "restated, approximate: includes a share of a split commune"],
    none: ["đơn vị chưa tồn tại trong kỳ, không có số liệu tính lại", "the unit did not exist then; nothing is restated"],
  },
  former_district: {
    restated_exact: ["từ 01/07/2025 theo dõi qua các xã, phường mới hình thành từ huyện cũ, trùng địa giới (chính xác)", "followed after 1 July 2025 through the communes formed from it, exactly its territory"],
    restated_approximate: ["từ 01/07/2025 theo dõi qua các xã, phường mới hình thành chủ yếu từ huyện cũ (gần đúng, không trùng hẳn địa giới)", "followed after 1 July 2025 through the communes formed mostly from it (approximate)"],
    none: ["không có số liệu cho huyện cũ trong kỳ này", "no figures for the former district in this period"],
  },
  province: {
    restated_exact: ["gồm số liệu tính lại của các đơn vị trước sắp xếp (chính xác)", "includes figures restated from the units before the reorganisation"],
    restated_approximate: ["gồm số liệu tính lại gần đúng của các đơn vị trước sắp xếp", "includes approximate restated figures"],
    none: ["không có số liệu", "no figures"],
  },
};

function basisText(basis, level) {
  return (BASIS_TEXT[level] || BASIS_TEXT.commune)[basis];
}

/** "*", "≈" or "†" after a value or a name, with its meaning for screen readers and on hover. */
export function basisMark(basis, level = "commune", testid = undefined) {
  const mark = BASIS_MARK[basis];
  if (!mark) return null;
  const [vi] = basisText(basis, level);
  return h("span", { class: ["basis-mark", `basis-${basis}`], title: vi, "data-testid": testid, "data-basis": basis },
    h("span", { "aria-hidden": "true" }, mark), h("span", { class: "visually-hidden" }, ` (${vi})`));
}

/** Footnote lines for the marks that appear (bases: any iterable of basis values). */
export function basisNotes(bases, level = "commune", { marks = true } = {}) {
  const present = new Set(bases);
  return Object.keys(BASIS_MARK).filter((b) => present.has(b)).map((b) => {
    const [vi, en] = basisText(b, level);
    return h("p", { class: "basis-note", "data-testid": "basis-note", "data-basis": b },
      marks ? h("span", { class: "basis-mark", "aria-hidden": "true" }, BASIS_MARK[b]) : null,
      marks ? ` ${vi} ` : `Số liệu ${vi}. `, h("span", { class: "en", lang: "en" }, en));
  });
}
