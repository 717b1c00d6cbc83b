// Operators' dashboard of the Thanh Hóa e-government KPI API. Vanilla JS, no build step.
//
// - Periods are anchored on the server's clock: the scope unit's scorecard is first read
//   without from/to (the server's last 30 days) and every choice is derived from its `to`.
// - Every period view asks about the units of the period's last day (`as_of`): by default
//   today's communes and wards (level=commune); "by former district" and the province are
//   one click away. Values restated across the 1 July 2025 reorganisation are marked.
// - Modules: api.js (state, client, panel runner), widgets.js, units.js (unit choices),
//   cards.js (overview, score, scorecard), analysis.js (ranking, series), map.js, now.js.

import { $, clear, h } from "./dom.js";
import { STATUS, addDays, addMonths, formatPeriod, splitIso, startOfDay, unitVi } from "./format.js";
import { ApiError, api, describe, expire, request, state, updateMainState, whenExpired } from "./api.js";
import { GROUPS, badge, groupOf } from "./widgets.js";
import { REFORM, fillUnitSelect, loadChoices, resetUnits } from "./units.js";
import { loadOverview, loadScore, loadScorecard, scoreParams, scorecardTarget } from "./cards.js";
import { loadRanking, loadSeries, rankingParams, renderKpiAbout, selectedKpi } from "./analysis.js";
import { loadMap, resetMap, setColourBy, whenCommuneOpened } from "./map.js";
import { loadAlerts, loadOverdue, loadProjects } from "./now.js";

const KEY_STORAGE = "thanhhoa.kpi.operatorKey";

// ---- periods --------------------------------------------------------------------------------

function buildPeriodChoices(anchorCard) {
  const to = splitIso(anchorCard.to);
  state.anchor = { end: to.date, offset: to.offset };
  const select = $("#month-select");
  clear(select).append(h("option", { value: "" }, "— Chọn tháng —"));
  const lastDay = addDays(to.date, -1);
  // at least 13 months, and back to the first month of the reform's year (for comparisons
  // with the months before the districts ended)
  const oldest = [addMonths(`${lastDay.slice(0, 7)}-01`, -12), `${REFORM.slice(0, 4)}-01-01`].sort()[0];
  let month = `${lastDay.slice(0, 7)}-01`;
  for (let i = 0; month >= oldest && i < 48; i += 1) {
    const [y, m] = month.split("-");
    const before = addMonths(month, 1) <= REFORM ? " – trước sắp xếp" : "";
    select.append(h("option", { value: month }, `Tháng ${Number(m)}/${y}${i === 0 ? " (đến nay)" : before}`));
    month = addMonths(month, -1);
  }
}

function choosePeriod() {
  const { end, offset } = state.anchor;
  const month = $("#month-select").value;
  let from;
  let to;
  if (month) {
    from = startOfDay(month, offset);
    to = startOfDay(addMonths(month, 1) < end ? addMonths(month, 1) : end, offset);
  } else {
    const checked = document.querySelector("input[name='range']:checked");
    const days = Number(checked ? checked.value : 30);
    from = startOfDay(addDays(end, -days), offset);
    to = startOfDay(end, offset);
  }
  state.period = { from, to, day: addDays(splitIso(to).date, -1) };
  const toolbar = $("#toolbar");
  toolbar.dataset.from = from;
  toolbar.dataset.to = to;
  toolbar.dataset.asOf = state.period.day;
  $("#period-text").textContent = formatPeriod(from, to);
  for (const el of document.querySelectorAll(".period-inline")) el.textContent = formatPeriod(from, to);
  $("#period-previous").textContent = "";
}

function chooseLevel() {
  const checked = document.querySelector("input[name='level']:checked");
  state.level = checked ? checked.value : "commune";
  $("#toolbar").dataset.level = state.level;
}

const PERIOD_PANELS = ["#overview", "#score", "#analysis", "#map-panel", "#series-panel", "#unit-card"];

/** A new generation of views: <main data-generation> grows and reads "loading" until all are in. */
function nextGeneration(panels) {
  state.cache = new Map();
  const main = $("#main");
  main.dataset.generation = String(Number(main.dataset.generation || 0) + 1);
  for (const selector of panels) $(selector).dataset.state = "loading";
  updateMainState();
  return main.dataset.generation;
}

async function loadPeriodViews() {
  choosePeriod();
  chooseLevel();
  const generation = nextGeneration(PERIOD_PANELS);
  let lists;
  try {
    lists = await loadChoices(state.period.day);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      expire(err);
      return;
    }
    for (const selector of PERIOD_PANELS) $(selector).dataset.state = "error";
    updateMainState();
    showGlobalError(`Không tải được danh sách đơn vị – ${describe(err)}`);
    return;
  }
  if (!state.key || $("#main").dataset.generation !== generation) return;
  state.lists = lists;
  fillUnitSelect($("#series-unit"), lists.groups, $("#series-unit").value, state.scope.key);
  fillUnitSelect($("#unit-select"), lists.groups, $("#unit-select").value, lists.firstCommune || state.scope.key);
  loadOverview();
  loadScore();
  loadRanking();
  loadMap();
  loadSeries();
  loadScorecard();
}

function loadNowViews() {
  loadOverdue();
  loadProjects();
  loadAlerts();
}

// ---- CSV exports --------------------------------------------------------------------------------

async function downloadCsv(kind, button) {
  const { from, to, day } = state.period;
  const card = scorecardTarget();
  const sources = {
    "scorecard-overview": [`/v1/units/${encodeURIComponent(state.scope.code)}/scorecard`, { from, to, as_of: day }],
    score: ["/v1/score", scoreParams()],
    ranking: [`/v1/kpis/${encodeURIComponent(selectedKpi().id)}/ranking`, rankingParams()],
    "scorecard-unit": [`/v1/units/${encodeURIComponent(card.code)}/scorecard`, { from, to, as_of: card.asOf }],
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

// ---- key, session, start --------------------------------------------------------------------------

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
  state.cache = new Map();
  state.choices = new Map();
  state.lists = null;
  resetUnits();
  resetMap();
  for (const id of ["overview-summary", "overview-tiles", "score-body", "score-footnote", "ranking-body", "ranking-summary", "ranking-footnote",
    "series-chart", "series-legend", "series-table", "scorecard-body", "overdue-body", "projects-body", "alerts-body", "kpi-about",
    "map-box", "map-legend", "map-note", "map-table"]) clear(document.getElementById(id));
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

whenExpired((err) => signOut(`Khóa không còn hợp lệ – ${describe(err)}`));

whenCommuneOpened((key) => {
  const select = $("#unit-select");
  if (!state.choices.has(key)) return;
  select.value = key;
  loadScorecard();
  $("#unit-card").scrollIntoView({ block: "start" });
  $("#unitcard-title").focus({ preventScroll: true });
});

async function start(key) {
  state.key = key;
  const [all, kpis] = await Promise.all([api("/v1/units"), api("/v1/kpis")]);
  if (!all.items.length) throw new ApiError(0, "Không có đơn vị", "Khóa này không có đơn vị nào trong phạm vi.");
  state.scope = all.items[0];
  state.units = new Map(all.items.map((u) => [u.code, u]));
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
  for (const radio of document.querySelectorAll("input[name='level']")) {
    radio.addEventListener("change", () => {
      chooseLevel();
      nextGeneration(["#score", "#analysis", "#map-panel"]);
      loadScore();
      loadRanking();
      loadMap();
    });
  }
  for (const radio of document.querySelectorAll("input[name='map-colour']")) {
    radio.addEventListener("change", () => {
      setColourBy(radio.value);
      loadMap();
    });
  }
  $("#refresh").addEventListener("click", () => {
    loadPeriodViews();
    loadNowViews();
  });
  $("#kpi-select").addEventListener("change", () => {
    renderKpiAbout();
    loadRanking();
    loadMap();
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
