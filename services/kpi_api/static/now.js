// What holds now, whatever the period: overdue dossiers, IT projects, open alerts.

import { $, clear, h, s } from "./dom.js";
import { STATUS, formatInstant, formatNumber, formatValue } from "./format.js";
import { ApiError, api, expire, run, state, updateMainState } from "./api.js";
import { badge, bandStatus, targetText } from "./widgets.js";

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


export function loadOverdue() {
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

export function loadProjects() {
  const panel = $("#projects-panel");
  return run("projects", panel, "projects-message", async () => {
    const data = await api("/v1/projects", { unit: state.scope.code });
    return () => renderProjects(data);
  });
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

export async function loadAlerts() {
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
  const more = !Array.isArray(data) && data.next_cursor;
  const body = clear($("#alerts-body"));
  if (!items.length) {
    body.append(h("p", { class: "notice notice-ok" }, "Không có cảnh báo nào đang mở."));
    return;
  }
  const title = (a) => state.kpiById.get(a.kpi)?.name_vi || a.title || a.kpi || "—";
  const byTitle = new Map();
  for (const a of items) byTitle.set(title(a), (byTitle.get(title(a)) || 0) + 1);
  body.append(h("p", { class: "alerts-summary", "data-testid": "alerts-count" },
    h("strong", {}, `${formatNumber(items.length, 0)}${more ? "+" : ""}`), " cảnh báo đang mở",
    more ? h("span", { class: "muted" }, ` (hiển thị ${items.length} cảnh báo mới nhất)`) : null, ": ",
    [...byTitle.entries()].map(([t, n]) => `${t} (${formatNumber(n, 0)})`).join(" · ")));
  body.append(h("div", { class: "table-scroll alerts-scroll" }, h("table", { class: "data compact", "data-testid": "alerts-table" },
    h("caption", { class: "visually-hidden" }, "Cảnh báo đang mở"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Chỉ tiêu"), h("th", { scope: "col" }, "Đơn vị"), h("th", { scope: "col" }, "Mức"),
      h("th", { scope: "col", class: "num" }, "Giá trị"), h("th", { scope: "col", class: "num" }, "Ngưỡng"), h("th", { scope: "col" }, "Từ lúc"))),
    h("tbody", {}, items.map((a) => {
      const kpi = state.kpiById.get(a.kpi);
      const unit = kpi ? kpi.unit : (a.unit_of_measure || "");
      const level = a.status || a.severity || a.level;
      return h("tr", { "data-testid": "alert-row" },
        h("th", { scope: "row" }, title(a)),
        h("td", {}, a.unit_name || state.units.get(a.unit)?.name || a.unit || "—"),
        h("td", {}, STATUS[level] ? badge(level) : (level || "—")),
        h("td", { class: "num" }, formatValue(a.value ?? null, unit)),
        h("td", { class: "num" }, formatValue(a.threshold ?? a.target ?? null, unit)),
        h("td", {}, formatInstant(a.opened_at || a.since || a.started_at || a.time, state.anchor.offset)));
    })))));
}
