// Formatting for the dashboard: Vietnamese number and date conventions, units, statuses.
//
// Numbers are rounded with Number.prototype.toFixed (half away from zero on the exact
// binary value) and written the Vietnamese way: "." groups thousands, "," is the decimal
// mark, "−" (U+2212) is the minus sign. tests/e2e/test_dashboard_browser.py applies the
// same rule (Decimal.quantize with ROUND_HALF_UP) to the API's numbers.

export const MINUS = "\u2212";

// Decimal places by unit of measure; anything not listed is a count (0 decimals).
const DIGITS = { "%": 1, hours: 1, "working hours": 1, "per 100 000": 1, points: 1 };

// Units of measure: Vietnamese first (shown), English kept for the secondary line.
const UNITS_VI = {
  "%": "%",
  hours: "giờ",
  "working hours": "giờ làm việc",
  projects: "dự án",
  minutes: "phút",
  "per 100 000": "ca/100.000 dân",
  boardings: "lượt",
  entries: "lượt",
  loans: "lượt",
  points: "điểm",
};

export function digitsFor(unit) {
  return DIGITS[unit] ?? 0;
}

export function unitVi(unit) {
  return UNITS_VI[unit] ?? unit;
}

/** "1.234,5" - or "—" for null/undefined (no data is never shown as zero). */
export function formatNumber(value, digits = 1, { sign = false } = {}) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const fixed = Math.abs(value).toFixed(digits);
  const [whole, frac] = fixed.split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ".");
  const body = frac ? `${grouped},${frac}` : grouped;
  const zero = /^[0.]*$/.test(fixed.replace(".", ""));
  if (zero) return body;
  if (value < 0) return MINUS + body;
  return sign ? `+${body}` : body;
}

/** A value with its unit: "97,3%", "48,2 giờ", "1.204 lượt". */
export function formatValue(value, unit) {
  const text = formatNumber(value, digitsFor(unit));
  if (text === "—") return text;
  const vi = unitVi(unit);
  return vi === "%" ? `${text}%` : `${text} ${vi}`;
}

export const STATUS = {
  green: { vi: "Đạt", en: "On target", icon: "check" },
  amber: { vi: "Cần chú ý", en: "Watch", icon: "warn" },
  red: { vi: "Chưa đạt", en: "Off target", icon: "cross" },
  no_data: { vi: "Không có dữ liệu", en: "No data", icon: "dash" },
  no_target: { vi: "Chưa đặt mục tiêu", en: "No target", icon: "circle" },
};

// ---- dates --------------------------------------------------------------------------------
// The API speaks ISO 8601 with the province's offset (+07:00). Calendar arithmetic is done
// on the date part only, so the browser's own clock and time zone never matter.

/** "2025-05-06T00:00:00+07:00" → { date: "2025-05-06", offset: "+07:00" } */
export function splitIso(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T[\d:.]+(Z|[+-]\d{2}:\d{2})?$/.exec(iso);
  if (!m) throw new Error(`unexpected timestamp ${iso}`);
  return { date: m[1], offset: m[2] === "Z" || !m[2] ? "+00:00" : m[2] };
}

export function addDays(date, days) {
  const [y, mo, d] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, mo - 1, d + days));
  return t.toISOString().slice(0, 10);
}

export function addMonths(date, months) {
  const [y, mo] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, mo - 1 + months, 1));
  return t.toISOString().slice(0, 10);
}

export function startOfDay(date, offset) {
  return `${date}T00:00:00${offset}`;
}

/** "2025-05-06" → "06/05/2025" */
export function formatDate(date) {
  const [y, m, d] = date.split("-");
  return `${d}/${m}/${y}`;
}

/** A period [from, to) as inclusive local days: "06/04/2025 – 05/05/2025". */
export function formatPeriod(fromIso, toIso) {
  const a = splitIso(fromIso).date;
  const b = addDays(splitIso(toIso).date, -1);
  return `${formatDate(a)} – ${formatDate(b)}`;
}

function offsetMinutes(offset) {
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(offset);
  if (!m) return 0;
  const minutes = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === "-" ? -minutes : minutes;
}

/** An instant shown in the province's local time: "05/05/2025 08:15". */
export function formatInstant(iso, offset = "+07:00") {
  if (!iso) return "—";
  const t = new Date(Date.parse(iso) + offsetMinutes(offset) * 60000);
  if (Number.isNaN(t.getTime())) return iso;
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(t.getUTCDate())}/${pad(t.getUTCMonth() + 1)}/${t.getUTCFullYear()} ${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`;
}
