// Daily time-series chart as inline SVG. Days without data are gaps (shaded, never drawn as
// zero); the target is a dashed line. Geometry uses SVG attributes, colours come from CSS.

import { formatNumber, formatDate, splitIso, unitVi } from "./format.js";
import { s } from "./dom.js";

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

/**
 * points: [{start, value}], options: {unit, digits, target, direction, title, description}.
 * Returns an <svg> element.
 */
export function seriesChart(points, { unit, digits, target, targetLabel, title, description }) {
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

  // the line: one path segment per run of consecutive days with data
  let d = "";
  let run = 0;
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) { run = 0; return; }
    d += `${run === 0 ? "M" : "L"}${x(i).toFixed(1)} ${y(p.value).toFixed(1)} `;
    run += 1;
  });
  if (d) svg.append(s("path", { class: "chart-line", d: d.trim(), fill: "none" }));

  const dots = s("g", { class: "chart-points" });
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const label = `${formatDate(splitIso(p.start).date)}: ${formatNumber(p.value, digits)}${suffix || " " + unitVi(unit)}`;
    dots.append(s("circle", {
      cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: n > 45 ? 2.5 : 4,
      "data-testid": "chart-point", "data-value": String(p.value),
    }, s("title", {}, label)));
  });
  svg.append(dots);

  if (!values.length) {
    svg.append(s("text", { x: M.left + plotW / 2, y: M.top + plotH / 2, "text-anchor": "middle", class: "chart-empty" },
      "Không có dữ liệu trong kỳ này"));
  }
  return svg;
}
