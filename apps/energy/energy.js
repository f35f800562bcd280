// 電力見える化: a household's consumption against its district's average, and the city by district.
import { maplibregl, CENTRE, mapStyle, setLanguage, initialLanguage } from "/apps/shared/common.js";

const TEXTS = {
  title: { ja: "電力見える化", en: "Energy dashboard" }, hour: { ja: "時刻", en: "Hour" },
  mine: { ja: "わが家と地区平均", en: "My home and my district" }, token: { ja: "世帯トークン", en: "Household token" },
  show: { ja: "表示", en: "Show" }, home: { ja: "わが家", en: "My home" },
  district: { ja: "地区平均（同意世帯）", en: "District average (opted-in homes)" },
  suppressed: { ja: "灰色の地区: 同意世帯が少ないため非表示", en: "Grey districts: too few opted-in homes to show" },
  denied: { ja: "トークンが無効です", en: "The token is not valid" },
};
let lang = initialLanguage();
let byDistrict = [];

let map = null;
try {
  map = new maplibregl.Map({ container: "map", style: await mapStyle(), center: CENTRE, zoom: 12 });
} catch (error) {
  document.getElementById("map").textContent = `map unavailable: ${error.message}`;
}

function paintHour() {
  const hour = Number(document.getElementById("hour").value);
  document.getElementById("hourLabel").textContent = `${hour}:00`;
  const values = {};
  for (const row of byDistrict) if (row.hour === hour && row.avg_w_per_home != null) values[row.district_code] = row.avg_w_per_home;
  window.__districtValues = values;
  if (!map?.getLayer("energy")) return;
  if (!Object.keys(values).length) { map.setPaintProperty("energy", "fill-color", "#cccccc"); return; }
  const match = ["match", ["get", "code"]];
  for (const [code, w] of Object.entries(values)) match.push(code, w);
  match.push(-1);
  map.setPaintProperty("energy", "fill-color", ["case", ["<", match, 0], "#cccccc",
    ["interpolate", ["linear"], match, 200, "#fff3b0", 600, "#ff9a00", 1200, "#b30000"]]);
}

async function loadCity() {
  byDistrict = (await (await fetch("/api/v1/gis/energy-by-district")).json()).items;
  paintHour();
}

map?.on("load", () => {
  map.addLayer({ id: "energy", type: "fill", source: "districts", paint: { "fill-color": "#cccccc", "fill-opacity": 0.7 } }, "districts");
  paintHour();
});

async function showMine(event) {
  event?.preventDefault();
  const token = document.getElementById("token").value || localStorage.getItem("cityos-household-token");
  if (!token) return;
  const response = await fetch("/api/v1/energy/my", { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) { document.getElementById("status").textContent = TEXTS.denied[lang]; return; }
  localStorage.setItem("cityos-household-token", token);
  const data = await response.json();
  const max = Math.max(1, ...data.hours.flatMap((h) => [h.my_w ?? 0, h.district_avg_w ?? 0]));
  const rows = [];
  for (const h of data.hours) {
    const label = document.createElement("span");
    label.textContent = `${h.hour}:00`;
    const cell = document.createElement("div");
    cell.innerHTML = `<div class="bar" style="width:${(100 * (h.my_w ?? 0)) / max}%"></div>` +
      `<div class="bar district" style="width:${(100 * (h.district_avg_w ?? 0)) / max}%"></div>`;
    cell.title = `${h.my_w ?? "-"} W / ${h.district_avg_w ?? "-"} W`;
    rows.push(label, cell);
  }
  document.getElementById("bars").replaceChildren(...rows);
  document.getElementById("status").textContent = `${data.device_id} (${data.district_code})`;
  window.__myHours = data.hours;
}

document.getElementById("signin").addEventListener("submit", showMine);
document.getElementById("hour").addEventListener("input", paintHour);
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "ja" ? "en" : "ja";
  document.getElementById("lang").textContent = lang === "ja" ? "EN" : "日本語";
  setLanguage(lang, TEXTS);
});
setLanguage(lang, TEXTS);
loadCity();
showMine();
