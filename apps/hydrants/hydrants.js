// 消火栓マップ: the nearest fire-water facilities, readable in snow, working offline after one visit.
import {
  maplibregl, CENTRE, createMap, setData, loadLayer, loadWithRetry, languageButton, notice, t, text,
  distanceM, bearingDeg, compass, showOnMap,
} from "/apps/shared/common.js";
import { enqueue, keepFlushing, pending } from "/apps/shared/outbox.js";

const TEXTS = {
  title: { ja: "消火栓マップ", en: "Hydrant map" },
  nearest: { ja: "近くの消防水利", en: "Nearest fire-water facilities" },
  locate: { ja: "現在地", en: "My location" }, type: { ja: "種別", en: "Type" },
  all: { ja: "すべて", en: "All" }, hydrant: { ja: "消火栓", en: "Hydrant" }, tank: { ja: "防火水槽", en: "Water tank" },
  buried: { ja: "埋まっている", en: "Buried" }, cleared: { ja: "除雪済み", en: "Cleared" },
  here: { ja: "現在地（基準点）", en: "You are here (reference point)" },
  thanks: { ja: "報告を受け付けました（確認後に表示）", en: "Thank you: shown once checked" },
  later: { ja: "しばらくしてから報告してください", en: "Please report again later" },
  queued: { ja: "送信待ち", en: "Queued" },
  queuedNote: { ja: "オフラインのため報告{n}件は送信待ちです。接続が戻ると自動で送信します。",
    en: "{n} report(s) queued while offline: sent automatically when the connection is back." },
  sent: { ja: "送信待ちの報告を送信しました（確認後に表示）", en: "Queued reports sent: shown once checked" },
  noLocation: { ja: "現在地を取得できません。地図をタップして基準点を選べます。", en: "Location unavailable: tap the map to choose a point." },
  tapHint: { ja: "地図をタップすると基準点を移動します", en: "Tap the map to move the reference point" },
};
const N = 10;
let here = CENTRE;
let features = [];
let status = {};
const queued = new Set(); // hydrant ids with a report waiting in the outbox

const map = await createMap({
  zoom: 15,
  sources: {
    boundary: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
    hydrants: { type: "geojson", data: { type: "FeatureCollection", features: [] } },
  },
  layers: [
    // The city's outline (国土数値情報 N03), so residents see where the data ends.
    { id: "boundary", type: "line", source: "boundary", paint: { "line-color": "#c00", "line-width": 3 } },
    { id: "hydrants", type: "circle", source: "hydrants", paint: {
      "circle-radius": ["case", ["==", ["get", "report"], "buried"], 14, 11],
      "circle-color": ["case", ["==", ["get", "report"], "buried"], "#c00000",
        ["==", ["slice", ["get", "kind"], 0, 3], "消火栓"], "#ffd400", "#00b4ff"],
      "circle-stroke-color": "#111", "circle-stroke-width": 3 } },
  ],
});
loadLayer("boundary", (data) => {
  setData(map, "boundary", data);
  window.__boundaryNames = data.features.map((f) => f.properties.name);
});
const hereMarker = map ? new maplibregl.Marker({ element: hereElement() }).setLngLat(here).addTo(map) : null;

function hereElement() {
  const el = document.createElement("div");
  el.className = "here-marker";
  el.setAttribute("aria-hidden", "true");
  return el;
}

function kindOf(f) {
  return typeof f.properties.kind === "string" ? f.properties.kind : "";
}

function render() {
  const kind = document.getElementById("kind").value;
  const shown = features.filter((f) => !kind || kindOf(f).startsWith(kind));
  setData(map, "hydrants", { type: "FeatureCollection", features: shown.map((f) => ({
    type: "Feature", id: f.id, geometry: f.geometry,
    properties: { kind: kindOf(f), report: status[f.id] ?? "" } })) });
  const ranked = shown.map((f) => ({ f, d: distanceM(here, f.geometry.coordinates), b: bearingDeg(here, f.geometry.coordinates) }))
    .sort((a, b) => a.d - b.d).slice(0, N);
  const list = document.getElementById("nearest");
  list.replaceChildren(...ranked.map(({ f, d, b }) => {
    const li = document.createElement("li");
    li.className = "hydrant";
    li.dataset.id = f.id;
    const go = document.createElement("button");
    go.className = "item-main";
    go.textContent = `${text(kindOf(f) || "—", 20)}  ${Math.round(d)} m ${compass(b)}  ${text(f.properties.address, 60)}`;
    go.addEventListener("click", () => showOnMap(map, f.geometry.coordinates, 18));
    li.append(go);
    if (status[f.id]) {
      const tag = document.createElement("span");
      tag.className = `tag tag-${status[f.id]}`;
      tag.textContent = TEXTS[status[f.id]]?.[document.documentElement.lang] ?? text(status[f.id]);
      li.append(" ", tag);
    }
    const actions = document.createElement("span");
    actions.className = "actions";
    if (queued.has(String(f.id))) {
      li.classList.add("queued");
      const tag = document.createElement("span");
      tag.className = "tag tag-queued";
      tag.textContent = t("queued");
      actions.append(tag);
    } else {
      for (const kind of ["buried", "cleared"]) {
        const button = document.createElement("button");
        button.textContent = t(kind);
        button.className = `report-${kind}`;
        button.addEventListener("click", () => sendReport(String(f.id), kind, button));
        actions.append(button);
      }
    }
    li.append(actions);
    return li;
  }));
  window.__hydrantsRendered = ranked.length;
}

async function sendReport(id, kind, button) {
  button.disabled = true;
  const url = `/api/v1/hydrants/${encodeURIComponent(id)}/reports`;
  let response = null;
  try {
    response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ status: kind }) });
  } catch (_) { /* offline: queued below */ }
  if (response === null || response.status >= 500) {
    await enqueue({ url, body: { status: kind }, meta: { hydrant: id, kind } });
    await showOutbox();
    return;
  }
  notice("report", response.ok ? "thanks" : "later");
  if (!response.ok) button.disabled = false;
}

async function showOutbox() {
  const items = await pending().catch(() => []);
  queued.clear();
  for (const item of items) queued.add(String(item.meta?.hydrant));
  const box = document.getElementById("outbox");
  box.hidden = items.length === 0;
  box.textContent = items.length ? t("queuedNote", { n: items.length }) : "";
  window.__queuedReports = items.length;
  render();
}

keepFlushing(async (_item, response) => {
  if (response.ok) notice("report", "sent");
  await showOutbox();
});
showOutbox();

function loadHydrants() {
  notice("loading", "loading");
  loadLayer("fire_water", (data) => {
    features = data.features.filter((f) => f.geometry.type === "Point");
    notice("loading", null);
    render();
  });
  loadWithRetry("status", "/api/v1/hydrants/status", (rows) => {
    status = Object.fromEntries((Array.isArray(rows) ? rows : [])
      .filter((s) => s && (s.status === "buried" || s.status === "cleared")).map((s) => [String(s.hydrant_id), s.status]));
    render();
  });
}

function moveHere(point) {
  here = point;
  hereMarker?.setLngLat(here);
  render();
}

map?.on("click", (e) => moveHere([e.lngLat.lng, e.lngLat.lat]));
document.getElementById("kind").addEventListener("change", render);
document.getElementById("locate").addEventListener("click", () => {
  if (!navigator.geolocation) return notice("location", "noLocation");
  navigator.geolocation.getCurrentPosition((p) => {
    notice("location", null);
    moveHere([p.coords.longitude, p.coords.latitude]);
    showOnMap(map, here, 16);
  }, () => notice("location", "noLocation"), { timeout: 10_000 });
});
languageButton(TEXTS, () => { showOutbox(); });
loadHydrants();

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/apps/hydrants/sw.js", { scope: "/apps/hydrants/" }).catch(() => {});
}
