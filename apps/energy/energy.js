// 電力見える化: the city's household consumption by area and hour (opted-in homes; each district shown at
// the finest area with at least k homes), live city average, and a household's own curve beside its district.
import { createMap, styleReady, loadLayer, loadWithRetry, languageButton, notice, retryLater, t, text, num, formatTime } from "/apps/shared/common.js";

const TEXTS = {
  title: { ja: "電力見える化", en: "Energy dashboard" }, hour: { ja: "時刻", en: "Hour" },
  mine: { ja: "わが家と地域平均", en: "My home and my district" }, token: { ja: "世帯トークン", en: "Household token" },
  show: { ja: "表示", en: "Show" }, home: { ja: "わが家", en: "My home" }, signout: { ja: "サインアウト", en: "Sign out" },
  district: { ja: "地区平均（同意世帯）", en: "District average (opted-in homes)" },
  suppressedShort: { ja: "非表示（少数）", en: "hidden (too few homes)" },
  pick: { ja: "地区をタップすると値を表示します", en: "Tap a district to see its value" },
  denied: { ja: "トークンが無効です", en: "The token is not valid" },
  signedOut: { ja: "サインアウトしました", en: "Signed out" },
  now: { ja: "いまの市内平均: {w} W/世帯（{n}世帯, {t}）", en: "City average now: {w} W per home ({n} homes, {t})" },
  nowNone: { ja: "いまの市内平均: 同意世帯が少ないため非表示", en: "City average now: hidden (too few opted-in homes)" },
  levels: { ja: "表示単位（{h}時）: 地区 {d}・町 {town}・市全体 {c}・非表示 {s}", en: "Shown at ({h}:00): district {d}, town {town}, city {c}, hidden {s}" },
  atDistrict: { ja: "{w} W/世帯（この地区の{n}世帯）", en: "{w} W per home ({n} homes in this district)" },
  atTown: { ja: "{w} W/世帯（{a}の{n}世帯の平均）", en: "{w} W per home (average of {n} homes in {a})" },
  atCity: { ja: "{w} W/世帯（市内の少数地区{n}世帯の平均）", en: "{w} W per home (average of {n} homes in small districts city-wide)" },
  hidden: { ja: "同意世帯が少ないため非表示", en: "hidden: too few opted-in homes" },
  noData: { ja: "この時刻のデータはまだありません", en: "No data for this hour yet" },
};
let rows = [];
let names = {};

const map = await createMap({ zoom: 12, labels: false, layers: [] });
if (map) {
  await styleReady(map);
  map.addLayer({ id: "energy", type: "fill", source: "districts", paint: { "fill-color": "#cccccc", "fill-opacity": 0.75 } }, "roads");
}

function jstHour(date = new Date()) {
  return Number(new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Tokyo", hour: "numeric", hourCycle: "h23" }).format(date));
}

/** The latest complete hour (JST) that has a value somewhere; the previous hour when none has. */
function openingHour() {
  const last = (jstHour() + 23) % 24;
  const withData = new Set(rows.filter((r) => num(r.avg_w_per_home) !== null).map((r) => r.hour));
  for (let back = 0; back < 24; back++) {
    const hour = (last - back + 24) % 24;
    if (withData.has(hour)) return hour;
  }
  return last;
}

function valuesAt(hour) {
  const out = {};
  for (const r of rows) if (r.hour === hour && num(r.avg_w_per_home) !== null && typeof r.district_code === "string") out[r.district_code] = r;
  return out;
}

function paintHour() {
  const hour = Number(document.getElementById("hour").value);
  document.getElementById("hourLabel").textContent = `${hour}:00`;
  const values = valuesAt(hour);
  window.__districtValues = Object.fromEntries(Object.entries(values).map(([code, r]) => [code, r.avg_w_per_home]));
  const count = { district: 0, town: 0, city: 0, suppressed: 0 };
  for (const r of rows) if (r.hour === hour) count[r.level in count ? r.level : "suppressed"] += 1;
  window.__levels = count;
  document.getElementById("levels").textContent = rows.length
    ? t("levels", { h: hour, d: count.district, town: count.town, c: count.city, s: count.suppressed }) : t("noData");
  if (!map?.getLayer("energy")) return;
  if (!Object.keys(values).length) { map.setPaintProperty("energy", "fill-color", "#cccccc"); return; }
  const match = ["match", ["get", "code"]];
  for (const [code, r] of Object.entries(values)) match.push(code, num(r.avg_w_per_home));
  match.push(-1);
  map.setPaintProperty("energy", "fill-color", ["case", ["<", match, 0], "#cccccc",
    ["interpolate", ["linear"], match, 200, "#fff3b0", 600, "#ff9a00", 1200, "#b30000"]]);
}

function describe(code) {
  const r = valuesAt(Number(document.getElementById("hour").value))[code];
  const name = text(names[code] ?? code, 40);
  if (!r) return `${name}: ${t("hidden")}`;
  const w = Math.round(num(r.avg_w_per_home));
  const key = r.level === "district" ? "atDistrict" : r.level === "town" ? "atTown" : "atCity";
  return `${name}: ${t(key, { w, n: num(r.homes) ?? "—", a: text(r.area, 30) })}`;
}

let opened = false;
function loadCity() {
  return loadWithRetry("city", "/api/v1/gis/energy-by-area", (data) => {
    rows = (Array.isArray(data?.items) ? data.items : []).filter((r) => r && Number.isInteger(r.hour));
    if (!opened && rows.length) {
      document.getElementById("hour").value = String(openingHour());
      opened = true;
    }
    notice("loading", null);
    paintHour();
    window.__energyLoaded = rows.length;
  });
}

map?.on("click", "energy", (e) => {
  document.getElementById("picked").textContent = describe(e.features[0].properties.code);
});

let liveDelay = 10;
function connectLive() {
  const source = new EventSource("/api/v1/live/energy?interval_s=60");
  source.addEventListener("energy", (e) => {
    let data = null;
    try { data = JSON.parse(e.data); } catch (_) { return; }
    const w = num(data?.city?.avg_power_w);
    document.getElementById("now").textContent = w === null ? t("nowNone")
      : t("now", { w: Math.round(w), n: num(data.city.homes) ?? "—", t: formatTime(data.t) });
    window.__liveEnergy = w;
    liveDelay = 10;
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) return;
    retryLater(connectLive, liveDelay);
    liveDelay = Math.min(300, liveDelay * 2);
  });
}

function bar(cls, w, max) {
  const el = document.createElement("div");
  el.className = cls;
  el.style.width = `${(100 * (num(w) ?? 0)) / max}%`;
  return el;
}

async function showMine(event) {
  event?.preventDefault();
  const token = document.getElementById("token").value || localStorage.getItem("cityos-household-token");
  if (!token) return;
  let response;
  try {
    response = await fetch("/api/v1/energy/my", { headers: { Authorization: `Bearer ${token}` } });
  } catch (_) {
    document.getElementById("mine").textContent = t("offlineNone");
    return;
  }
  if (response.status === 401 || response.status === 403) {
    document.getElementById("mine").textContent = t("denied");
    return;
  }
  if (!response.ok) { document.getElementById("mine").textContent = t("failed", { s: 60 }); retryLater(showMine, 60); return; }
  localStorage.setItem("cityos-household-token", token);
  document.getElementById("token").value = "";
  document.getElementById("signin").hidden = true;
  document.getElementById("signout").hidden = false;
  const data = await response.json();
  const hours = Array.isArray(data?.hours) ? data.hours : [];
  const max = Math.max(1, ...hours.flatMap((h) => [num(h.my_w) ?? 0, num(h.district_avg_w) ?? 0]));
  const cells = [];
  for (const h of hours) {
    const label = document.createElement("span");
    label.textContent = `${num(h.hour) ?? "—"}:00`;
    const cell = document.createElement("div");
    cell.append(bar("bar", h.my_w, max), bar("bar district", h.district_avg_w, max));
    cell.title = `${num(h.my_w) ?? "-"} W / ${num(h.district_avg_w) ?? "-"} W`;
    cells.push(label, cell);
  }
  document.getElementById("bars").replaceChildren(...cells);
  document.getElementById("mine").textContent = `${text(data.device_id, 40)} (${text(names[data.district_code] ?? data.district_code, 40)})`;
  window.__myHours = hours;
}

function signOut(event) {
  event?.preventDefault();
  localStorage.removeItem("cityos-household-token");
  document.getElementById("bars").replaceChildren();
  document.getElementById("signin").hidden = false;
  document.getElementById("signout").hidden = true;
  document.getElementById("mine").textContent = t("signedOut");
  window.__myHours = undefined;
}

document.getElementById("signin").addEventListener("submit", showMine);
for (const control of document.querySelectorAll("#signin input, #signin button")) control.disabled = false;
document.getElementById("signout").addEventListener("submit", signOut);
document.getElementById("hour").addEventListener("input", paintHour);
languageButton(TEXTS, paintHour);
notice("loading", "loading");
loadLayer("districts", (d) => {
  names = Object.fromEntries(d.features.map((f) => [f.properties.code, f.properties.name_ja]));
});
loadCity();
setInterval(loadCity, 300_000);
connectLive();
showMine();
