// 除雪車ナビ: live snowplow positions (Server-Sent Events) and the streets plowed recently.
import {
  createMap, setData, loadWithRetry, languageButton, notice, retryLater, t, text, num, formatTime, parseTime, showOnMap,
} from "/apps/shared/common.js";

const TEXTS = {
  title: { ja: "除雪車ナビ", en: "Snowplow map" },
  hours: { ja: "除雪済み（時間以内）", en: "Plowed within (hours)" },
  plows: { ja: "稼働中の除雪車", en: "Snowplows at work" },
  street: { ja: "道路をタップすると最終除雪時刻を表示します", en: "Tap a street to see when it was last plowed" },
  never: { ja: "この期間は未除雪", en: "not plowed in this period" },
  last: { ja: "最終除雪", en: "last plowed" },
  bladeDown: { ja: "除雪中の除雪車", en: "Snowplow, blade down" }, bladeUp: { ja: "移動中の除雪車", en: "Snowplow, blade up" },
  plowed: { ja: "除雪済みの道路", en: "Plowed street" }, unplowed: { ja: "未除雪の道路", en: "Not yet plowed" },
  liveBusy: { ja: "リアルタイム位置に接続できません。{s}秒後に再接続します", en: "Live positions unavailable; reconnecting in {s} s" },
  unnamed: { ja: "名称のない道路", en: "Unnamed street" },
};
const positions = new Map();
window.__positions = positions;

const map = await createMap({
  zoom: 13,
  sources: {
    coverage: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
    plows: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
  },
  layers: [
    { id: "coverage", type: "line", source: "coverage", paint: {
      "line-width": ["case", ["==", ["get", "plowed"], true], 5, 4],
      "line-color": ["case", ["==", ["get", "plowed"], true], "#0050d0", "#a33a00"] } },
    // a wide invisible line over each street: a finger finds it, not only a 5 px stroke
    { id: "coverage-hit", type: "line", source: "coverage", paint: { "line-width": 28, "line-opacity": 0 } },
    { id: "plows", type: "circle", source: "plows", paint: {
      "circle-radius": 11, "circle-color": ["case", ["==", ["get", "blade_down"], true], "#ff6a00", "#ffd400"],
      "circle-stroke-color": "#111", "circle-stroke-width": 3 } },
  ],
});

/** A position usable on the map: finite coordinates, or it is skipped. */
function valid(p) {
  return p && typeof p === "object" && typeof p.device_id === "string" && num(p.lat) !== null && num(p.lon) !== null
    && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180;
}

function renderPlows() {
  const list = [...positions.values()].sort((a, b) => a.device_id.localeCompare(b.device_id));
  setData(map, "plows", { type: "FeatureCollection", features: list.map((p) => ({
    type: "Feature", geometry: { type: "Point", coordinates: [num(p.lon), num(p.lat)] },
    properties: { device_id: p.device_id, blade_down: p.blade_down === true } })) });
  document.getElementById("plows").replaceChildren(...list.map((p) => {
    const li = document.createElement("li");
    li.dataset.id = p.device_id;
    const button = document.createElement("button");
    button.className = "item-main";
    const speed = num(p.speed_kmh);
    button.textContent = `${text(p.device_id, 40)}  ${speed === null ? "—" : Math.round(speed)} km/h  ${formatTime(p.t)}`;
    button.addEventListener("click", () => showOnMap(map, [num(p.lon), num(p.lat)], 16));
    li.append(button);
    return li;
  }));
  window.__plowTimes = list.map((p) => ({ id: p.device_id, shown: formatTime(p.t), year: parseTime(p.t)?.getUTCFullYear() ?? null }));
}

function loadCoverage() {
  const hours = Number(document.getElementById("hours").value) || 12;
  return loadWithRetry("coverage", `/api/v1/gis/snowplow-coverage?hours=${hours}`, (data) => {
    setData(map, "coverage", { type: "FeatureCollection", features: (data?.features ?? []).filter((f) => f?.geometry) });
    window.__coverageLoaded = (data?.features ?? []).length;
  });
}

let liveDelay = 5;
function connectLive() {
  const source = new EventSource("/api/v1/live/snowplows");
  const take = (p) => { if (valid(p)) positions.set(p.device_id, p); };
  const parse = (data) => { try { return JSON.parse(data); } catch (_) { return null; } };
  source.addEventListener("snapshot", (e) => {
    const rows = parse(e.data);
    for (const p of Array.isArray(rows) ? rows : []) take(p);
    renderPlows();
    notice("live", null);
    liveDelay = 5;
    window.__liveReady = true;
  });
  source.addEventListener("position", (e) => {
    take(parse(e.data));
    window.__lastPositionAt = performance.now();
    renderPlows();
  });
  source.addEventListener("error", () => {
    if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
    // refused (429 when the address has too many connections or requests) or the server is down
    notice("live", "liveBusy", { s: liveDelay });
    retryLater(connectLive, liveDelay);
    liveDelay = Math.min(120, liveDelay * 2);
  });
}

map?.on("click", "coverage-hit", (e) => {
  const p = e.features[0].properties;
  const last = p.last_plowed && p.last_plowed !== "null" ? parseTime(p.last_plowed) : null;
  const when = last ? `${t("last")}: ${formatTime(p.last_plowed, { date: true })}` : t("never");
  document.getElementById("street").textContent = `${p.name ? text(p.name, 60) : t("unnamed")}: ${when}`;
});
map?.on("mouseenter", "coverage-hit", () => { map.getCanvas().style.cursor = "pointer"; });
map?.on("mouseleave", "coverage-hit", () => { map.getCanvas().style.cursor = ""; });

notice("loading", "loading");
loadCoverage().then(() => notice("loading", null));
setInterval(loadCoverage, 60_000);
connectLive();
document.getElementById("hours").addEventListener("change", loadCoverage);
languageButton(TEXTS, renderPlows);
