// Choropleth of Thanh Hóa's 166 communes and wards (of 1 July 2025), drawn here as SVG from
// /v1/map/communes: no tile server, no library. Projection: equirectangular, longitudes
// scaled by cos(mid latitude) (the province spans 1.4° of latitude: the distortion is < 1%).
//
// Colours (style.css): by status (green / amber / red / no target; no data is hatched) or by
// value class (6-class YlGnBu, colour-blind safe; equal "nice" intervals over the values).
// Never colour alone: the legend names every colour and counts it, every shape is a focusable
// button whose accessible name says the commune, its value and its status, and the table
// under the map (and the ranking) lists the same values.
//
// Before 1 July 2025 these communes did not exist: the map then shows the districts' view -
// each commune coloured by its former district (level=former_district) - and says so.

import { $, clear, h, icon, s } from "./dom.js";
import { STATUS, digitsFor, formatDate, formatNumber, formatValue, unitVi } from "./format.js";
import { request, run, shared, state } from "./api.js";
import { BASIS_MARK, basisNotes } from "./widgets.js";
import { rankingParams, selectedKpi } from "./analysis.js";
import { REFORM, formerDistricts, mapCommunes } from "./units.js";

const W = 800;
const PAD = 8;
const PALETTE_SIZE = 6;
const MAP_STATUSES = ["green", "amber", "red", "no_target", "no_data"];

let geometry = null; // { svg, paths: Map code → path, boxes: Map code → {cx, top, bottom}, height }
let colourBy = "status";
let onOpen = () => {};

export function resetMap() {
  geometry = null;
}

/** What a click (or Enter) on a commune does: open its scorecard (set by app.js). */
export function whenCommuneOpened(handler) {
  onOpen = handler;
}

export function setColourBy(mode) {
  colourBy = mode;
}

/** The level the map is coloured by: the communes themselves from the reform on, else the districts. */
export function mapLevel() {
  return state.level === "former_district" || state.period.day < REFORM ? "former_district" : "commune";
}

// ---- value classes ----------------------------------------------------------------------------

function niceStep(raw) {
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
}

/** Equal classes of a "nice" width from below the least value to the greatest (at most 6). */
export function valueClasses(values) {
  const vs = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  if (!vs.length) return null;
  const min = Math.min(...vs);
  const max = Math.max(...vs);
  if (min === max) return { bounds: [min, max], n: 1 };
  const step = niceStep((max - min) / 5);
  const lo = Math.floor(min / step) * step;
  const n = Math.max(1, Math.ceil((max - lo) / step));
  const bounds = Array.from({ length: n + 1 }, (_, i) => Number((lo + i * step).toPrecision(12)));
  return { bounds, n };
}

export function classOf(classes, value) {
  if (!classes || value === null || value === undefined) return null;
  let i = 0;
  while (i + 1 < classes.n && value >= classes.bounds[i + 1]) i += 1;
  return i;
}

/** Palette colour of class i of n: spread over the 6 colours, darkest = greatest. */
export function paletteIndex(i, n) {
  return n === 1 ? 3 : Math.round((i * (PALETTE_SIZE - 1)) / (n - 1));
}

// ---- geometry -----------------------------------------------------------------------------------

function rings(geom) {
  return geom.type === "Polygon" ? geom.coordinates : geom.type === "MultiPolygon" ? geom.coordinates.flat() : [];
}

function build(collection) {
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const f of collection.features) {
    for (const ring of rings(f.geometry)) {
      for (const [lon, lat] of ring) {
        x0 = Math.min(x0, lon); x1 = Math.max(x1, lon); y0 = Math.min(y0, lat); y1 = Math.max(y1, lat);
      }
    }
  }
  const k = Math.cos((((y0 + y1) / 2) * Math.PI) / 180);
  const scale = (W - 2 * PAD) / ((x1 - x0) * k);
  const height = Math.ceil((y1 - y0) * scale + 2 * PAD);
  const px = (lon) => PAD + (lon - x0) * k * scale;
  const py = (lat) => PAD + (y1 - lat) * scale;

  const svg = s("svg", { class: "map", viewBox: `0 0 ${W} ${height}`, role: "group", "aria-labelledby": "map-title", "aria-describedby": "map-note", "data-testid": "map-svg" });
  const layer = s("g", { class: "map-units" });
  const paths = new Map();
  const boxes = new Map();
  const shapes = collection.features.map((f) => {
    const code = String(f.id ?? f.properties.code);
    let d = "";
    let [bx0, bx1, by0, by1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const ring of rings(f.geometry)) {
      ring.forEach(([lon, lat], i) => {
        const x = px(lon);
        const y = py(lat);
        bx0 = Math.min(bx0, x); bx1 = Math.max(bx1, x); by0 = Math.min(by0, y); by1 = Math.max(by1, y);
        d += `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
      });
      d += "Z";
    }
    boxes.set(code, { cx: (bx0 + bx1) / 2, cy: (by0 + by1) / 2, top: by0, bottom: by1 });
    return { code, d };
  });
  // keyboard order: north to south in bands, west to east within a band
  const band = height / 14;
  shapes.sort((a, b) => {
    const pa = boxes.get(a.code);
    const pb = boxes.get(b.code);
    return Math.floor(pa.cy / band) - Math.floor(pb.cy / band) || pa.cx - pb.cx;
  });
  for (const { code, d } of shapes) {
    const path = s("path", { d, class: "map-unit", id: `map-u-${code}`, tabindex: "0", role: "button", "fill-rule": "evenodd", "data-code": code, "data-testid": "map-commune" });
    paths.set(code, path);
    layer.append(path);
  }
  const hover = s("g", { class: "map-hover" }, s("path", { d: "M0 0" }));
  const focus = s("g", { class: "map-focus" }, s("path", { class: "map-focus-outer", d: "M0 0" }), s("path", { class: "map-focus-inner", d: "M0 0" }));
  const tip = s("g", { class: "map-tip", visibility: "hidden", "aria-hidden": "true", "data-testid": "map-tip" },
    s("rect", { rx: "6" }), s("text", {}, s("tspan", { class: "map-tip-name" }), s("tspan", { class: "map-tip-value" }), s("tspan", { class: "map-tip-more" })));
  svg.append(s("defs", {},
    s("pattern", { id: "map-hatch", width: "6", height: "6", patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      s("rect", { width: "6", height: "6", class: "map-hatch-bg" }), s("line", { x1: "0", y1: "0", x2: "0", y2: "6", class: "map-hatch-line" }))),
  layer, s("g", { class: "map-overlay" }, hover, focus), tip);
  const refresh = wire(svg, paths, boxes, hover, focus, tip, height);
  return { svg, paths, boxes, height, refresh };
}

function wire(svg, paths, boxes, hover, focus, tip, height) {
  const unitOf = (event) => event.target.closest && event.target.closest(".map-unit");
  // in the districts' view, the communes of the hovered / focused one's former district stand out
  const active = { hover: null, focus: null };
  const regroup = () => {
    const formers = new Set([active.hover, active.focus].filter(Boolean).map((p) => p.dataset.former).filter(Boolean));
    const on = svg.dataset.level === "former_district" && formers.size > 0;
    for (const p of paths.values()) p.classList.toggle("map-sibling", on && formers.has(p.dataset.former));
    svg.querySelector(".map-units").classList.toggle("is-grouped", on);
  };
  const outline = (overlay, path) => {
    if (path) for (const p of overlay.children) p.setAttribute("d", path.getAttribute("d"));
    overlay.classList.toggle("is-on", Boolean(path));
  };
  // the tip shows the hovered commune, else the focused one
  const showTip = (path) => {
    if (!path) {
      tip.setAttribute("visibility", "hidden");
      return;
    }
    const lines = tip.querySelectorAll("tspan");
    const texts = [path.dataset.name || "", path.dataset.valueText || "", path.dataset.more || ""];
    lines.forEach((t, i) => { t.textContent = texts[i]; t.setAttribute("x", "10"); t.setAttribute("y", String(22 + i * 18)); });
    const box = boxes.get(path.dataset.code);
    const width = Math.max(...[...lines].map((t) => t.getComputedTextLength())) + 20;
    const tall = (texts[2] ? 3 : 2) * 18 + 12;
    const x = Math.min(Math.max(4, box.cx - width / 2), W - width - 4);
    const y = box.top - tall - 8 > 4 ? box.top - tall - 8 : Math.min(box.bottom + 8, height - tall - 4);
    tip.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
    tip.querySelector("rect").setAttribute("width", width.toFixed(1));
    tip.querySelector("rect").setAttribute("height", String(tall));
    tip.setAttribute("visibility", "visible");
    tip.dataset.code = path.dataset.code;
  };
  const track = (kind, overlay, on) => (e) => {
    const p = unitOf(e);
    if (!p) return;
    active[kind] = on ? p : null;
    outline(overlay, active[kind]);
    showTip(active.hover || active.focus);
    regroup();
  };
  svg.addEventListener("pointerover", track("hover", hover, true));
  svg.addEventListener("pointerout", track("hover", hover, false));
  svg.addEventListener("focusin", track("focus", focus, true));
  svg.addEventListener("focusout", track("focus", focus, false));
  svg.addEventListener("click", (e) => { const p = unitOf(e); if (p && p.dataset.key) onOpen(p.dataset.key); });
  svg.addEventListener("keydown", (e) => {
    const p = unitOf(e);
    if (p && p.dataset.key && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); onOpen(p.dataset.key); }
  });
  return () => { showTip(active.hover || active.focus); regroup(); };
}

// ---- load and colour ------------------------------------------------------------------------------

export function loadMap() {
  const panel = $("#map-panel");
  const kpi = selectedKpi();
  const level = mapLevel();
  const params = rankingParams(level);
  return run("map", panel, "map-message", async () => {
    const [shapes, communes, former, data] = await Promise.all([
      geometry ? null : request("/v1/map/communes", {}, "application/geo+json").then((r) => r.json()),
      mapCommunes(),
      formerDistricts(),
      shared(`/v1/kpis/${encodeURIComponent(kpi.id)}/ranking`, params),
    ]);
    return () => {
      if (shapes) geometry = build(shapes);
      draw(panel, kpi, level, data, communes, former);
    };
  });
}

function draw(panel, kpi, level, data, communes, former) {
  panel.dataset.level = level;
  panel.dataset.kpi = kpi.id;
  panel.dataset.colourBy = colourBy;
  panel.dataset.from = data.from;
  panel.dataset.to = data.to;
  const box = $("#map-box");
  if (!box.contains(geometry.svg)) clear(box).append(geometry.svg);
  geometry.svg.dataset.level = level;
  const unitByCode = new Map(communes.map((u) => [u.code, u]));
  // a commune's row: its own (by unit key: codes are reused), or its former district's (by code)
  const rows = new Map(data.items.map((r) => [level === "commune" ? r.unit_key : r.unit, r]));
  const rowOf = (u) => rows.get(level === "commune" ? u.key : u.former_district);
  const digits = digitsFor(kpi.unit);
  const classes = valueClasses(data.items.map((r) => r.value));
  const counts = {};
  const districts = {}; // bucket → former districts coloured so (the districts' view)
  const table = [];
  for (const [code, path] of geometry.paths) {
    const unit = unitByCode.get(code);
    const row = unit ? rowOf(unit) : undefined;
    const status = row ? row.status : "no_data";
    const value = row ? row.value : null;
    const k = colourBy === "value" ? classOf(classes, value) : null;
    const fill = colourBy === "value" ? (k === null ? "map-fill-no_data" : `map-fill-c${paletteIndex(k, classes.n)}`) : `map-fill-${status}`;
    const bucket = colourBy === "value" ? (k === null ? "no_data" : `c${k}`) : status;
    counts[bucket] = (counts[bucket] || 0) + 1;
    if (level === "former_district" && unit?.former_district) (districts[bucket] ||= new Set()).add(unit.former_district);
    const district = unit && former.get(unit.former_district);
    const mark = row && value !== null ? BASIS_MARK[row.basis] || "" : "";
    const valueText = `${formatValue(value, kpi.unit)}${mark ? ` ${mark}` : ""} · ${STATUS[status].vi}`;
    const name = unit ? unit.full_name : code;
    const more = level === "former_district" && district ? `theo huyện cũ: ${district.full_name}` : "";
    path.setAttribute("class", `map-unit ${fill}`);
    // a commune outside the operator's scope: drawn, but neither focusable nor clickable
    path.setAttribute("tabindex", unit ? "0" : "-1");
    if (unit) path.removeAttribute("aria-disabled");
    else path.setAttribute("aria-disabled", "true");
    Object.assign(path.dataset, { key: unit ? unit.key : "", former: unit?.former_district || "", status, value: value === null ? "" : String(value),
      name, valueText, more, basis: row ? row.basis : "none", fill: bucket });
    path.setAttribute("aria-label", `${name}: ${formatValue(value, kpi.unit)}, ${STATUS[status].vi}${more ? ` (${more})` : ""}${row && value !== null && row.basis.startsWith("restated") ? ", số liệu tính lại" : ""}. Mở thẻ điểm.`);
    table.push({ code, name, district: district ? district.full_name : "", row, value, status, unit });
  }
  geometry.refresh();
  $("#map-title").textContent = `Bản đồ ${geometry.paths.size} xã, phường – ${kpi.name_vi}`;
  renderNote(level, data);
  renderLegend(kpi, classes, counts, districts, digits, data, level);
  renderTable(table, kpi, level);
}

function renderNote(level, data) {
  const note = clear($("#map-note"));
  note.dataset.level = level;
  if (level === "former_district") {
    const why = state.period.day < REFORM
      ? `Kỳ báo cáo kết thúc ngày ${formatDate(state.period.day)}, trước khi các xã, phường này được thành lập (${formatDate(REFORM)}): `
      : "Đang so sánh theo huyện cũ: ";
    note.append(h("strong", {}, "Theo huyện cũ. "), why,
      "mỗi xã, phường được tô theo giá trị của huyện cũ mà nó được hình thành chủ yếu từ đó (di chuột hoặc chọn một xã để thấy các xã cùng huyện cũ). ",
      h("span", { class: "en", lang: "en" }, "Districts' view: each commune is coloured by the value of its former district."));
  } else {
    note.append(`Mỗi xã, phường được tô theo giá trị của chính nó trong kỳ (đơn vị ngày ${formatDate(data.as_of)}). `,
      h("span", { class: "en", lang: "en" }, "Each commune is coloured by its own value."));
  }
}

function swatch(fill) {
  return s("svg", { class: "map-swatch", viewBox: "0 0 20 14", width: "20", height: "14", "aria-hidden": "true", focusable: "false" },
    s("rect", { x: "0.5", y: "0.5", width: "19", height: "13", rx: "2", class: `map-swatch-rect ${fill}`, "data-testid": "map-swatch" }));
}

function renderLegend(kpi, classes, counts, districts, digits, data, level) {
  const legend = clear($("#map-legend"));
  const item = (bucket, fill, label, en, extra = {}) => h("li", { class: "map-legend-item", "data-testid": "map-legend-item", "data-bucket": bucket, ...extra },
    swatch(fill), h("span", { class: "map-legend-label" }, STATUS[bucket] ? icon(STATUS[bucket].icon) : null, label,
      en ? h("span", { class: "en", lang: "en" }, ` ${en}`) : null),
    h("span", { class: "map-legend-count", "data-count": String(counts[bucket] || 0) }, `${counts[bucket] || 0} xã`,
      level === "former_district" ? h("span", { class: "map-legend-districts" }, ` (${districts[bucket]?.size || 0} huyện cũ)`) : null));
  if (colourBy === "status") {
    legend.append(h("h4", {}, "Trạng thái so với mục tiêu", h("span", { class: "en", lang: "en" }, " Status against target")),
      h("ul", {}, MAP_STATUSES.filter((st) => st !== "no_target" || counts[st]).map((st) => item(st, `map-fill-${st}`, STATUS[st].vi, STATUS[st].en))));
  } else {
    const unit = unitVi(kpi.unit);
    const rows = [];
    if (classes) {
      for (let i = classes.n - 1; i >= 0; i -= 1) {
        const lo = formatNumber(classes.bounds[i], digits);
        const hi = formatNumber(classes.bounds[i + 1], digits);
        const label = classes.n === 1 ? lo : i === classes.n - 1 ? `${lo} – ${hi}` : `${lo} – dưới ${hi}`;
        rows.push(item(`c${i}`, `map-fill-c${paletteIndex(i, classes.n)}`, label, "", { "data-lo": String(classes.bounds[i]), "data-hi": String(classes.bounds[i + 1]) }));
      }
    }
    rows.push(item("no_data", "map-fill-no_data", STATUS.no_data.vi, STATUS.no_data.en));
    legend.append(h("h4", {}, `Giá trị (${unit})`, h("span", { class: "en", lang: "en" }, " Value")),
      h("p", { class: "map-legend-hint" }, `Màu đậm hơn: giá trị lớn hơn (${kpi.direction === "lower" ? "thấp hơn là tốt hơn" : "cao hơn là tốt hơn"}).`),
      h("ul", {}, rows));
  }
  const bases = data.items.filter((r) => r.value !== null).map((r) => r.basis);
  const notes = basisNotes(bases, level);
  if (notes.length) legend.append(h("div", { class: "footnote" }, notes));
}

function renderTable(rows, kpi, level) {
  const box = clear($("#map-table"));
  rows.sort((a, b) => a.name.localeCompare(b.name, "vi"));
  box.append(h("table", { class: "data compact", "data-testid": "map-table" },
    h("caption", { class: "visually-hidden" }, "Giá trị tô màu của từng xã, phường trên bản đồ"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Xã, phường"),
      level === "former_district" ? h("th", { scope: "col" }, "Tô theo huyện cũ") : null,
      h("th", { scope: "col", class: "num" }, `Giá trị (${unitVi(kpi.unit)})`), h("th", { scope: "col" }, "Trạng thái"))),
    h("tbody", {}, rows.map((r) => h("tr", { "data-testid": "map-table-row", "data-code": r.code },
      h("th", { scope: "row" }, r.name),
      level === "former_district" ? h("td", {}, r.district) : null,
      h("td", { class: "num" }, formatNumber(r.value, digitsFor(kpi.unit)), r.row && r.value !== null && BASIS_MARK[r.row.basis] ? ` ${BASIS_MARK[r.row.basis]}` : ""),
      h("td", {}, STATUS[r.status].vi))))));
}
