// The page's state, the API client and the panel runner shared by every view.
//
// - The operator key lives in sessionStorage only and travels in the Authorization header;
//   it never appears in a URL.
// - Every panel carries data-state="loading|ready|error" (and <main> "ready" once nothing
//   is loading) so the browser test can wait on conditions instead of time.

import { $, clear, h } from "./dom.js";

export const state = {
  key: null,
  scope: null, // the operator's scope unit {code, name, full_name}
  units: new Map(), // code → unit of today, every unit in scope
  kpis: [], // every KPI of the registry
  kpiById: new Map(),
  anchor: null, // { end: "YYYY-MM-DD" (exclusive), offset: "+07:00" }
  period: null, // { from, to, day } - day: the period's last day, the "as of" day of every view
  level: "commune", // commune | former_district | province: what score and ranking compare
  choices: new Map(), // unit key → { code, asOf, unit } for the unit selects of the period
  lists: null, // the period's units (units.js loadChoices)
  tokens: {},
  cache: new Map(), // GET answers of the current generation (cleared on every reload)
};

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

let onExpired = () => {};

/** What to do when the key stops working (set by app.js: sign out with the reason). */
export function whenExpired(handler) {
  onExpired = handler;
}

export function expire(err) {
  onExpired(err);
}

export async function request(path, params = {}, accept = "application/json") {
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

export async function api(path, params) {
  return (await request(path, params)).json();
}

/** The same GET asked by two views of one generation (ranking table and map) is sent once. */
export function shared(path, params) {
  const key = `${path}?${new URLSearchParams(params)}`;
  if (!state.cache.has(key)) {
    const answer = api(path, params);
    answer.catch(() => state.cache.delete(key));
    state.cache.set(key, answer);
  }
  return state.cache.get(key);
}

export function describe(err) {
  if (err instanceof ApiError) return err.status ? `${err.title} (HTTP ${err.status}): ${err.detail}` : `${err.title}: ${err.detail}`;
  return `Lỗi không mong đợi: ${err.message}`;
}

export function message(id, text, kind = "info") {
  const el = document.getElementById(id);
  clear(el);
  if (text) el.append(h("p", { class: ["notice", `notice-${kind}`] }, text));
}

export function updateMainState() {
  const main = $("#main");
  const busy = main.querySelector("[data-state='loading']");
  main.dataset.state = busy ? "loading" : "ready";
  main.setAttribute("aria-busy", busy ? "true" : "false");
}

/** A panel load: fetch, then render if it is still the latest request of its kind. */
export async function run(name, panel, messageId, load) {
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
