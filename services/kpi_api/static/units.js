// Which units the page offers for a period. A code is not a unit: 14758 is Phường Đông Thọ
// until 2025-06-30 and Phường Hàm Rồng from 2025-07-01, so every choice is a unit key
// (code@first day) with the day to ask the API about it ("as_of").

import { clear, h } from "./dom.js";
import { addDays, formatDate } from "./format.js";
import { api, state } from "./api.js";

// Thanh Hóa's 166 communes and wards replaced its districts and 548 communes on this day;
// /v1/map/communes draws the communes of this day.
export const REFORM = "2025-07-01";
export const EVE = addDays(REFORM, -1);

const session = { mapCommunes: null, formerDistricts: null };
let periodUnits = { day: null, items: [] };

export function resetUnits() {
  session.mapCommunes = null;
  session.formerDistricts = null;
  periodUnits = { day: null, items: [] };
}

/** The communes of the map (those of REFORM, with the district each was formed mostly from). */
export async function mapCommunes() {
  if (!session.mapCommunes) session.mapCommunes = (await api("/v1/units", { level: "commune", as_of: REFORM })).items;
  return session.mapCommunes;
}

/** The districts of their last day (2025-06-30), by code. */
export async function formerDistricts() {
  if (!session.formerDistricts) {
    const items = (await api("/v1/units", { level: "district", as_of: EVE })).items;
    session.formerDistricts = new Map(items.map((u) => [u.code, u]));
  }
  return session.formerDistricts;
}

/** The day to ask about a unit for a period whose last day is `day`. */
export function asOfFor(unit, day) {
  if (unit.valid_to && unit.valid_to < day) return unit.valid_to;
  if (unit.valid_from && unit.valid_from > day) return unit.valid_from;
  return day;
}

export function choice(key) {
  return state.choices.get(key);
}

function option(unit, day, label) {
  state.choices.set(unit.key, { code: unit.code, asOf: asOfFor(unit, day), unit });
  return { value: unit.key, label };
}

function byName(a, b) {
  return a.full_name.localeCompare(b.full_name, "vi");
}

/**
 * Load the units of the period's last day and rebuild the choices: the scope, then (before
 * the reform) the districts of that day, the communes of that day grouped by district, and
 * (before the reform) today's communes, whose values there are restated from their predecessors.
 */
export async function loadChoices(day) {
  const [former, newCommunes, units] = await Promise.all([
    formerDistricts(),
    mapCommunes(),
    periodUnits.day === day ? periodUnits.items : api("/v1/units", { as_of: day }).then((d) => d.items),
  ]);
  periodUnits = { day, items: units };
  state.choices = new Map();
  const scope = state.scope;
  const groups = [{ label: "Phạm vi", options: [option(scope, day, scope.level === 1 ? `Toàn tỉnh – ${scope.full_name}` : scope.full_name)] }];
  const districts = new Map(units.filter((u) => u.level === 2).map((u) => [u.code, u]));
  const communes = units.filter((u) => u.level === 3);
  const before = day < REFORM;
  if (before && districts.size) {
    groups.push({ label: "Huyện, thị xã, thành phố", options: [...districts.values()].sort(byName).map((u) => option(u, day, u.full_name)) });
  }
  // communes grouped by their district then (before) or the district they were formed mostly from
  const home = (u) => (before ? districts.get(u.parent_code) : former.get(u.former_district));
  const grouped = new Map();
  for (const u of communes) {
    const d = home(u);
    const label = d ? (before ? `Xã, phường, thị trấn thuộc ${d.full_name}` : `Xã, phường từ ${d.full_name} cũ`) : "Xã, phường";
    if (!grouped.has(label)) grouped.set(label, []);
    grouped.get(label).push(u);
  }
  let firstCommune = null;
  for (const [label, members] of [...grouped.entries()].sort((a, b) => a[0].localeCompare(b[0], "vi"))) {
    groups.push({ label, options: members.sort(byName).map((u) => option(u, day, u.full_name)) });
    firstCommune = firstCommune || groups[groups.length - 1].options[0].value;
  }
  if (before) {
    groups.push({
      label: `Xã, phường từ ${formatDate(REFORM)} (số liệu tính lại)`,
      options: [...newCommunes].sort(byName).map((u) => option(u, day, `${u.full_name} (từ ${formatDate(REFORM)})`)),
    });
  }
  return { groups, communes, districts, former, newCommunes, firstCommune };
}

/** Fill a <select> with option groups; keep `value` when it is still offered, else `fallback`. */
export function fillUnitSelect(select, groups, value, fallback) {
  clear(select);
  for (const g of groups) {
    select.append(h("optgroup", { label: g.label }, g.options.map((o) => h("option", { value: o.value }, o.label))));
  }
  select.value = state.choices.has(value) ? value : fallback;
}

/** The district a commune of the period belongs to (before the reform) or came mostly from. */
export function homeDistrictName(unit, lists) {
  if (!unit || unit.level !== 3) return "";
  if (unit.former_district) {
    const d = lists.former.get(unit.former_district);
    return d ? `từ ${d.full_name} cũ` : "";
  }
  const d = lists.districts.get(unit.parent_code);
  return d ? d.full_name : "";
}

/** What a level compares, for titles: "các xã, phường (166 đơn vị ngày 05/12/2026)". */
export function levelTitle(level, day, count) {
  const n = count === undefined ? "" : ` – ${count} đơn vị`;
  if (level === "former_district") return `các huyện, thị xã, thành phố cũ (đến ${formatDate(EVE)}; sau đó theo các xã, phường hình thành chủ yếu từ mỗi huyện)${n}`;
  if (level === "province") return "toàn tỉnh";
  if (level === "district") return `các huyện, thị xã, thành phố ngày ${formatDate(day)}${n}`;
  return day < REFORM ? `các xã, phường, thị trấn ngày ${formatDate(day)}${n}` : `các xã, phường ngày ${formatDate(day)}${n}`;
}

export const LEVEL_EN = { commune: "communes and wards", former_district: "former districts", province: "the province", district: "districts" };
