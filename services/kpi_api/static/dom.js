// Tiny DOM builders. Text always goes in as text nodes (never innerHTML), so names coming
// from the API cannot inject markup. No inline styles anywhere: the CSP forbids them, so
// every visual state is a CSS class (SVG geometry uses presentation attributes).

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "style") throw new Error("inline styles are blocked by the CSP; use a CSS class");
    if (key === "class") el.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (key === "dataset") for (const [k, v] of Object.entries(value)) el.dataset[k] = v;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("td", { class: "num", "data-testid": "x" }, "text", otherNode) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

/** A small status icon (check, warn, cross, dash, circle) drawn in SVG: no icon font needed. */
export function icon(name) {
  const shapes = {
    check: [s("path", { d: "M3.5 8.5l3 3 6-7", fill: "none", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round" })],
    warn: [
      s("path", { d: "M8 2.2L14.3 13.5H1.7z", fill: "none", "stroke-width": "1.6", "stroke-linejoin": "round" }),
      s("path", { d: "M8 6.3v3.6", fill: "none", "stroke-width": "1.7", "stroke-linecap": "round" }),
      s("circle", { cx: "8", cy: "11.7", r: "0.9", class: "icon-dot" }),
    ],
    cross: [s("path", { d: "M4.2 4.2l7.6 7.6M11.8 4.2l-7.6 7.6", fill: "none", "stroke-width": "2", "stroke-linecap": "round" })],
    dash: [s("path", { d: "M4 8h8", fill: "none", "stroke-width": "2", "stroke-linecap": "round" })],
    circle: [s("circle", { cx: "8", cy: "8", r: "4.5", fill: "none", "stroke-width": "1.6" })],
  };
  return s("svg", { class: "icon", viewBox: "0 0 16 16", width: "16", height: "16", "aria-hidden": "true", focusable: "false" }, shapes[name] || []);
}
