// 除雪車ナビ: live snowplow positions (Server-Sent Events) and the streets plowed recently.
import { maplibregl, CENTRE, mapStyle, setLanguage, initialLanguage } from "/apps/shared/common.js";

const TEXTS = {
  title: { ja: "除雪車ナビ", en: "Snowplow map" },
  hours: { ja: "除雪済み（時間以内）", en: "Plowed within (hours)" },
  plows: { ja: "稼働中の除雪車", en: "Snowplows at work" },
  street: { ja: "道路をタップすると最終除雪時刻を表示します", en: "Tap a street to see when it was last plowed" },
  never: { ja: "この期間は未除雪", en: "not plowed in this period" },
  last: { ja: "最終除雪", en: "last plowed" },
};
let lang = initialLanguage();
const positions = new Map();
window.__positions = positions;

let map = null;
try {
  map = new maplibregl.Map({ container: "map", style: await mapStyle(), center: CENTRE, zoom: 13 });
  map.addControl(new maplibregl.NavigationControl());
} catch (error) {
  document.getElementById("map").textContent = `map unavailable: ${error.message}`;
}

function plowsGeoJSON() {
  return { type: "FeatureCollection", features: [...positions.values()].map((p) => ({
    type: "Feature", geometry: { type: "Point", coordinates: [p.lon, p.lat] },
    properties: { device_id: p.device_id, blade_down: !!p.blade_down } })) };
}

function renderPlows() {
  map?.getSource("plows")?.setData(plowsGeoJSON());
  const list = document.getElementById("plows");
  list.replaceChildren(...[...positions.values()].sort((a, b) => a.device_id.localeCompare(b.device_id)).map((p) => {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.dataset.id = p.device_id;
    li.textContent = `${p.device_id}  ${Math.round(p.speed_kmh ?? 0)} km/h  ${new Date(p.t).toLocaleTimeString(lang)}`;
    li.addEventListener("click", () => map?.flyTo({ center: [p.lon, p.lat], zoom: 16 }));
    return li;
  }));
}

async function loadCoverage() {
  const hours = document.getElementById("hours").value;
  const data = await (await fetch(`/api/v1/gis/snowplow-coverage?hours=${hours}`)).json();
  map?.getSource("coverage")?.setData(data);
}

function connectLive() {
  const source = new EventSource("/api/v1/live/snowplows");
  source.addEventListener("snapshot", (e) => {
    for (const p of JSON.parse(e.data)) positions.set(p.device_id, p);
    renderPlows();
    window.__liveReady = true;
  });
  source.addEventListener("position", (e) => {
    const p = JSON.parse(e.data);
    positions.set(p.device_id, p);
    window.__lastPositionAt = performance.now();
    renderPlows();
  });
}

map?.on("load", () => {
  map.addSource("coverage", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({ id: "coverage", type: "line", source: "coverage", paint: {
    "line-width": 5, "line-color": ["case", ["get", "plowed"], "#0070f0", "#c8c8c8"] } });
  map.addSource("plows", { type: "geojson", data: plowsGeoJSON() });
  map.addLayer({ id: "plows", type: "circle", source: "plows", paint: {
    "circle-radius": 11, "circle-color": ["case", ["get", "blade_down"], "#ff6a00", "#ffd400"],
    "circle-stroke-color": "#111", "circle-stroke-width": 3 } });
  map.on("click", "coverage", (e) => {
    const p = e.features[0].properties;
    const when = p.last_plowed && p.last_plowed !== "null" ? `${TEXTS.last[lang]}: ${new Date(p.last_plowed).toLocaleString(lang)}` : TEXTS.never[lang];
    document.getElementById("street").textContent = `${p.name}: ${when}`;
  });
  loadCoverage();
  renderPlows();
});
setInterval(loadCoverage, 60_000);
connectLive();

document.getElementById("hours").addEventListener("change", loadCoverage);
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "ja" ? "en" : "ja";
  document.getElementById("lang").textContent = lang === "ja" ? "EN" : "日本語";
  setLanguage(lang, TEXTS);
  renderPlows();
});
setLanguage(lang, TEXTS);
