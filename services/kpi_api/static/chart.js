// Daily time-series chart as inline SVG. Days without data are gaps (shaded, never drawn as
// zero); the target is a dashed line. Geometry uses SVG attributes, colours come from CSS.

import { formatNumber, formatDate, splitIso, unitVi } from "./format.js";
import { h, s } from "./dom.js";

const W = 640;
const H = 300;
const M = { top: 16, right: 12, bottom: 34, left: 48 };

function niceStep(span, ticks) {
  const raw = span / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
}

function yDomain(values, target, unit) {
  const top = Math.max(...values, target ?? -Infinity);
  if (unit === "%") return [0, 100, 20];
  if (!(top > 0)) return [0, 1, 0.25];
  const step = niceStep(top, 5);
  return [0, Math.ceil((top * 1.05) / step) * step, step];
}

const RESTATED = new Set(["restated_exact", "restated_approximate"]);

/** Days of the series outside the unit's life [validFrom, validTo]: before it existed / after it ended. */
function outside(points, validFrom, validTo) {
  return points.map((p) => {
    const d = splitIso(p.start).date;
    return (validFrom && d < validFrom) ? "before" : (validTo && d > validTo) ? "after" : null;
  });
}

/**
 * points: [{start, value, basis}], options: {unit, digits, target, direction, title, description,
 * validFrom, validTo}. Days before the unit existed are shaded and labelled; restated points are
 * diamonds (not circles) and the line through them is dashed. Returns an <svg> element.
 */
export function seriesChart(points, { unit, digits, target, targetLabel, title, description, validFrom, validTo }) {
  const values = points.map((p) => p.value).filter((v) => v !== null && v !== undefined);
  const [y0, y1, yStep] = yDomain(values, target, unit);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const n = Math.max(points.length, 1);
  const band = plotW / n;
  const x = (i) => M.left + band * (i + 0.5);
  const y = (v) => M.top + plotH - ((v - y0) / (y1 - y0)) * plotH;
  const suffix = unit === "%" ? "%" : "";
  const ids = `chart-${Math.random().toString(36).slice(2, 8)}`;

  const svg = s("svg", {
    class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${ids}-t ${ids}-d`,
    preserveAspectRatio: "xMidYMid meet", "data-testid": "series-chart",
  });
  svg.append(s("title", { id: `${ids}-t` }, title), s("desc", { id: `${ids}-d` }, description));

  // days without data: a light band, so a gap reads as "no data", not as a dip to zero
  const gaps = s("g", { class: "chart-gaps" });
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) {
      gaps.append(s("rect", { x: (M.left + band * i).toFixed(1), y: M.top, width: Math.max(band - 0.5, 0.5).toFixed(1), height: plotH },
        s("title", {}, `${formatDate(splitIso(p.start).date)}: không có dữ liệu`)));
    }
  });
  svg.append(gaps);

  // days before the unit existed (values there are restated from its predecessors, or none)
  const life = outside(points, validFrom, validTo);
  for (const side of ["before", "after"]) {
    const idx = life.map((v, i) => (v === side ? i : -1)).filter((i) => i >= 0);
    if (!idx.length) continue;
    const x0 = M.left + band * idx[0];
    const x1 = M.left + band * (idx[idx.length - 1] + 1);
    const edge = side === "before" ? x1 : x0;
    const day = side === "before" ? validFrom : validTo;
    svg.append(s("g", { class: "chart-before", "data-testid": `chart-${side}` },
      s("rect", { x: x0.toFixed(1), y: M.top, width: (x1 - x0).toFixed(1), height: plotH }),
      s("line", { x1: edge.toFixed(1), x2: edge.toFixed(1), y1: M.top, y2: M.top + plotH, "stroke-dasharray": "3 3" }),
      s("text", { x: (side === "before" ? edge - 6 : edge + 6).toFixed(1), y: M.top + 14, "text-anchor": side === "before" ? "end" : "start", class: "chart-label chart-before-label" },
        side === "before" ? `Trước khi thành lập (${formatDate(day)})` : `Sau ${formatDate(day)}`)));
  }

  // grid and y axis
  const grid = s("g", { class: "chart-grid" });
  for (let v = y0; v <= y1 + 1e-9; v += yStep) {
    grid.append(
      s("line", { x1: M.left, x2: W - M.right, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }),
      s("text", { x: M.left - 8, y: (y(v) + 4).toFixed(1), "text-anchor": "end", class: "chart-label" },
        formatNumber(v, yStep < 1 ? 2 : 0) + suffix),
    );
  }
  svg.append(grid);

  // x axis labels: about ten, at whole-day steps
  const axis = s("g", { class: "chart-axis" });
  axis.append(s("line", { x1: M.left, x2: W - M.right, y1: M.top + plotH, y2: M.top + plotH }));
  const every = Math.max(1, Math.ceil(n / 10));
  points.forEach((p, i) => {
    if (i % every !== 0) return;
    const d = splitIso(p.start).date;
    axis.append(
      s("line", { x1: x(i).toFixed(1), x2: x(i).toFixed(1), y1: M.top + plotH, y2: M.top + plotH + 5 }),
      s("text", { x: x(i).toFixed(1), y: M.top + plotH + 19, "text-anchor": "middle", class: "chart-label" },
        `${d.slice(8, 10)}/${d.slice(5, 7)}`),
    );
  });
  svg.append(axis);

  // the target
  if (target !== null && target !== undefined && target >= y0 && target <= y1) {
    svg.append(s("g", { class: "chart-target" },
      s("line", { x1: M.left, x2: W - M.right, y1: y(target).toFixed(1), y2: y(target).toFixed(1), "stroke-dasharray": "7 5" }),
      s("text", { x: M.left + 6, y: (y(target) + (target > (y0 + y1) / 2 ? 16 : -7)).toFixed(1), "text-anchor": "start", class: "chart-label chart-target-label" },
        targetLabel || `Mục tiêu ${formatNumber(target, digits)}${suffix || " " + unitVi(unit)}`)));
  }

  // the line: a segment between consecutive days with data, dashed when either end is restated
  const has = (p) => p && p.value !== null && p.value !== undefined;
  const paths = { observed: "", restated: "" };
  points.forEach((p, i) => {
    const q = points[i + 1];
    if (!has(p) || !has(q)) return;
    const kind = RESTATED.has(p.basis) || RESTATED.has(q.basis) ? "restated" : "observed";
    paths[kind] += `M${x(i).toFixed(1)} ${y(p.value).toFixed(1)}L${x(i + 1).toFixed(1)} ${y(q.value).toFixed(1)}`;
  });
  if (paths.observed) svg.append(s("path", { class: "chart-line", d: paths.observed, fill: "none" }));
  if (paths.restated) svg.append(s("path", { class: "chart-line chart-line-restated", d: paths.restated, fill: "none", "stroke-dasharray": "6 4" }));

  const dots = s("g", { class: "chart-points" });
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const restated = RESTATED.has(p.basis);
    const mark = p.basis === "restated_approximate" ? " (≈ tính lại, gần đúng)" : restated ? " (* tính lại)" : "";
    const label = `${formatDate(splitIso(p.start).date)}: ${formatNumber(p.value, digits)}${suffix || " " + unitVi(unit)}${mark}`;
    const r = n > 45 ? 2.5 : 4;
    const cx = x(i);
    const cy = y(p.value);
    const attrs = { "data-testid": "chart-point", "data-value": String(p.value), "data-basis": p.basis || "observed" };
    dots.append(restated
      ? s("path", { ...attrs, class: ["chart-point-restated", p.basis === "restated_approximate" ? "chart-point-approximate" : null],
        d: `M${cx.toFixed(1)} ${(cy - r * 1.4).toFixed(1)}l${(r * 1.4).toFixed(1)} ${(r * 1.4).toFixed(1)}l${(-r * 1.4).toFixed(1)} ${(r * 1.4).toFixed(1)}l${(-r * 1.4).toFixed(1)} ${(-r * 1.4).toFixed(1)}z` },
      s("title", {}, label))
      : s("circle", { ...attrs, cx: cx.toFixed(1), cy: cy.toFixed(1), r }, s("title", {}, label)));
  });
  svg.append(dots);

  if (!values.length) {
    svg.append(s("text", { x: M.left + plotW / 2, y: M.top + plotH / 2, "text-anchor": "middle", class: "chart-empty" },
      "Không có dữ liệu trong kỳ này"));
  }
  return svg;
}

/** The chart's legend: the keys that appear in it (restated points only when there are some). */
export function chartLegend(points, { validFrom, validTo, target }) {
  const bases = new Set(points.filter((p) => p.value !== null && p.value !== undefined).map((p) => p.basis));
  const life = outside(points, validFrom, validTo);
  const li = (cls, text) => h("li", {}, h("span", { class: ["key", cls] }), text);
  return h("ul", { class: "chart-legend", "data-testid": "chart-legend" },
    li("key-line", "Giá trị theo ngày"),
    target === null || target === undefined ? null : li("key-target", "Mục tiêu"),
    li("key-gap", "Ngày không có dữ liệu (để trống, không tính là 0)"),
    life.includes("before") ? li("key-before", `Trước khi đơn vị được thành lập (${formatDate(validFrom)})`) : null,
    bases.has("restated_exact") ? li("key-restated", "* Số liệu tính lại từ các đơn vị cũ hợp thành (chính xác)") : null,
    bases.has("restated_approximate") ? li("key-restated key-approximate", "≈ Tính lại, gần đúng: gồm một phần của xã cũ bị chia tách") : null);
}
