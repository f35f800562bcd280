// 消火栓マップ: the nearest fire-water facilities, readable in snow, working offline.
import { maplibregl, CENTRE, mapStyle, setLanguage, initialLanguage, distanceM, bearingDeg, compass } from "/apps/shared/common.js";

const TEXTS = {
  title: { ja: "消火栓マップ", en: "Hydrant map" },
  nearest: { ja: "近くの消防水利", en: "Nearest fire-water facilities" },
  locate: { ja: "現在地", en: "My location" },
  all: { ja: "すべて", en: "All" }, hydrant: { ja: "消火栓", en: "Hydrant" }, tank: { ja: "防火水槽", en: "Water tank" },
  buried: { ja: "埋まっている", en: "Buried" }, cleared: { ja: "除雪済み", en: "Cleared" },
  offline: { ja: "オフライン表示中（保存したデータ）", en: "Offline (saved data)" },
  thanks: { ja: "報告を受け付けました（確認後に表示）", en: "Thank you: shown once checked" },
  later: { ja: "しばらくしてから報告してください", en: "Please report again later" },
};
const N = 10;
let lang = initialLanguage();
let here = CENTRE;
let features = [];
let status = {};

async function sendReport(id, kind, button) {
  const response = await fetch(`/api/v1/hydrants/${encodeURIComponent(id)}/reports`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ status: kind }) });
  button.disabled = true;
  document.getElementById("status").textContent = response.ok ? TEXTS.thanks[lang] : TEXTS.later[lang];
}

// The list works without the map (no WebGL, screen readers); the map is an addition.
let map = null;
try {
  map = new maplibregl.Map({ container: "map", style: await mapStyle(), center: CENTRE, zoom: 15 });
  map.addControl(new maplibregl.NavigationControl());
} catch (error) {
  document.getElementById("map").textContent = `map unavailable: ${error.message}`;
}

async function loadHydrants() {
  const [lon, lat] = here;
  const d = 0.02;
  const url = `/ogc/collections/fire_water/items?bbox=${lon - d},${lat - d},${lon + d},${lat + d}&limit=2000`;
  try {
    const data = await (await fetch(url)).json();
    features = data.features;
    try {
      status = Object.fromEntries((await (await fetch("/api/v1/hydrants/status")).json()).map((s) => [s.hydrant_id, s.status]));
    } catch (_) { /* offline */ }
    document.getElementById("status").textContent = navigator.onLine ? "" : TEXTS.offline[lang];
  } catch (_) {
    document.getElementById("status").textContent = TEXTS.offline[lang];
  }
  render();
}

function render() {
  const kind = document.getElementById("kind").value;
  const shown = features.filter((f) => !kind || f.properties.kind.startsWith(kind));
  const collection = { type: "FeatureCollection", features: shown };
  map?.getSource("hydrants")?.setData(collection);
  const ranked = shown.map((f) => ({ f, d: distanceM(here, f.geometry.coordinates), b: bearingDeg(here, f.geometry.coordinates) }))
    .sort((a, b) => a.d - b.d).slice(0, N);
  const list = document.getElementById("nearest");
  list.replaceChildren(...ranked.map(({ f, d, b }) => {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.className = "hydrant";
    li.dataset.id = f.id;
    li.textContent = `${f.properties.kind}  ${Math.round(d)} m ${compass(b, lang)}  ${f.properties.address}`;
    li.addEventListener("click", () => map?.flyTo({ center: f.geometry.coordinates, zoom: 18 }));
    li.addEventListener("keydown", (e) => { if (e.key === "Enter") li.click(); });
    if (status[f.id]) li.append(` [${TEXTS[status[f.id]][lang]}]`);
    for (const kind of ["buried", "cleared"]) {
      const button = document.createElement("button");
      button.textContent = TEXTS[kind][lang];
      button.className = `report-${kind}`;
      button.addEventListener("click", (e) => { e.stopPropagation(); sendReport(f.id, kind, button); });
      li.append(" ", button);
    }
    return li;
  }));
  window.__hydrantsRendered = ranked.length;
}

map?.on("load", async () => {
  // The city's outline (the boundary layer: 国土数値情報 N03), so residents see where the data ends.
  try {
    const outline = await (await fetch("/ogc/collections/boundary/items?limit=10")).json();
    map.addSource("boundary", { type: "geojson", data: outline });
    map.addLayer({ id: "boundary", type: "line", source: "boundary", paint: { "line-color": "#c00", "line-width": 3 } });
    window.__boundaryNames = outline.features.map((f) => f.properties.name);
  } catch (_) { /* offline: hydrants only */ }
  map.addSource("hydrants", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "hydrants", type: "circle", source: "hydrants", paint: {
    "circle-radius": 12, "circle-color": ["case", ["==", ["get", "kind"], "消火栓"], "#ffd400", "#00b4ff"],
    "circle-stroke-color": "#111", "circle-stroke-width": 4 } });
  render();
});
map?.on("click", (e) => { here = [e.lngLat.lng, e.lngLat.lat]; loadHydrants(); });
loadHydrants();

document.getElementById("kind").addEventListener("change", render);
document.getElementById("locate").addEventListener("click", () => {
  navigator.geolocation?.getCurrentPosition((p) => {
    here = [p.coords.longitude, p.coords.latitude];
    map?.flyTo({ center: here, zoom: 16 });
    loadHydrants();
  });
});
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "ja" ? "en" : "ja";
  document.getElementById("lang").textContent = lang === "ja" ? "EN" : "日本語";
  setLanguage(lang, TEXTS);
  render();
});
setLanguage(lang, TEXTS);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/apps/hydrants/sw.js", { scope: "/apps/hydrants/" });
}
