// Shared by the living-lab apps: language (Japanese first), notices, data that survives offline and
// rate limits, defensive rendering of times, numbers and text, the map and geometry helpers.
import * as maplibregl from "/apps/vendor/maplibre-gl/maplibre-gl.mjs";

export { maplibregl };

export const CENTRE = [139.9297, 37.4947]; // 会津若松市役所
/** The Cache Storage bucket of the apps' data (the last answer of each data URL, kept for offline use). */
export const DATA_CACHE = "cityos-data-v1";

const SHARED_TEXTS = {
  offline: { ja: "オフライン: 保存したデータを表示しています{t}", en: "Offline: showing saved data{t}" },
  offlineNone: { ja: "オフライン: 保存したデータがありません", en: "Offline: no saved data yet" },
  busy: { ja: "アクセスが集中しています（同じ回線の利用者が多数）。{s}秒後に再読み込みします",
    en: "Too many requests from your network (shared address). Retrying in {s} s" },
  failed: { ja: "データを読み込めませんでした。{s}秒後に再試行します", en: "Could not load the data. Retrying in {s} s" },
  saved: { ja: "（{t} 保存）", en: " (saved {t})" },
  loading: { ja: "読み込み中…", en: "Loading…" },
};

let currentLang = localStorage.getItem("cityos-lang") || "ja";
const notices = new Map(); // key -> { kind, params }
let appTexts = {};

export function initialLanguage() {
  return currentLang;
}

/** Sets the page's language: every [data-t] element, the language button, and the notices. */
export function setLanguage(lang, texts) {
  currentLang = lang;
  appTexts = texts;
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) {
    const entry = texts[el.dataset.t] || SHARED_TEXTS[el.dataset.t];
    if (entry) el.textContent = entry[lang];
  }
  const button = document.getElementById("lang");
  if (button) {
    // the accessible name is the visible text (WCAG 2.5.3); the switch's meaning is in its title
    button.textContent = lang === "ja" ? "English" : "日本語";
    button.lang = lang === "ja" ? "en" : "ja";
    button.title = lang === "ja" ? "Switch to English" : "日本語に切り替え";
  }
  localStorage.setItem("cityos-lang", lang);
  renderNotices();
}

/** Wires the language button: calls ``onChange(lang)`` after switching. */
export function languageButton(texts, onChange) {
  document.getElementById("lang").addEventListener("click", () => {
    setLanguage(currentLang === "ja" ? "en" : "ja", texts);
    onChange?.(currentLang);
  });
  setLanguage(currentLang, texts);
}

export function t(key, params = {}) {
  const entry = appTexts[key] || SHARED_TEXTS[key];
  let text = entry ? entry[currentLang] : key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`{${name}}`, String(value));
  return text;
}

/** Shows (or with ``kind`` null, clears) a notice under ``key`` in the page's #status line. */
export function notice(key, kind, params = {}) {
  if (kind) notices.set(key, { kind, params });
  else notices.delete(key);
  renderNotices();
}

function renderNotices() {
  const el = document.getElementById("status");
  if (!el) return;
  const texts = [...new Set([...notices.values()].map(({ kind, params }) => t(kind, params)))];
  el.textContent = texts.join(" ");
  el.classList.toggle("offline", [...notices.values()].some((n) => n.kind.startsWith("offline")));
  el.classList.toggle("warn", [...notices.values()].some((n) => n.kind === "busy" || n.kind === "failed"));
}

const retries = new Set();
/** Runs ``fn`` after ``seconds``, or at once when the browser comes back online, whichever is first. */
export function retryLater(fn, seconds) {
  const entry = { fn, timer: null };
  const run = () => { clearTimeout(entry.timer); retries.delete(entry); fn(); };
  entry.run = run;
  entry.timer = setTimeout(run, seconds * 1000);
  retries.add(entry);
}
window.addEventListener("online", () => { for (const entry of [...retries]) entry.run(); });

/** Seconds to wait from a Retry-After header (seconds or HTTP date), within 1 s .. 10 min. */
export function retryAfterSeconds(value, fallback = 30) {
  if (!value) return fallback;
  const n = Number(value);
  const s = Number.isFinite(n) ? n : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(s) ? Math.min(600, Math.max(1, Math.ceil(s))) : fallback;
}

async function fetchWithTimeout(url, init, ms) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    return await fetch(url, { ...init, signal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

async function openCache() {
  try {
    return "caches" in self ? await caches.open(DATA_CACHE) : null;
  } catch (_) {
    return null; // storage disabled: work without it
  }
}

async function fromCache(cache, url) {
  const hit = await cache?.match(url, { ignoreVary: true });
  if (!hit) return null;
  try {
    return { data: await hit.json(), savedAt: hit.headers.get("x-saved-at") };
  } catch (_) {
    return null;
  }
}

/**
 * GETs JSON, keeping the last good answer in Cache Storage (so the first online visit is enough for
 * offline use). Never throws. Returns ``{ data, state, retryAfter, savedAt }`` where ``state`` is
 * "fresh", "offline" (network down: saved data or null), "busy" (429: saved data or null, retry after
 * ``retryAfter`` s) or "failed" (another error or a body that is not JSON; retry after ``retryAfter`` s).
 * ``cacheFirst`` serves a saved answer without asking the network (for versioned, immutable URLs).
 */
export async function getJSON(url, { cacheFirst = false, timeoutMs = 10_000 } = {}) {
  const cache = await openCache();
  if (cacheFirst) {
    const saved = await fromCache(cache, url);
    if (saved) return { ...saved, state: "fresh", retryAfter: null };
  }
  let response;
  try {
    response = await fetchWithTimeout(url, {}, timeoutMs);
  } catch (_) {
    return { ...(await fromCache(cache, url) ?? { data: null }), state: "offline", retryAfter: 15 };
  }
  if (response.ok) {
    const text = await response.text();
    try {
      const data = JSON.parse(text);
      const savedAt = new Date().toISOString();
      await cache?.put(url, new Response(text, { headers: { "content-type": "application/json", "x-saved-at": savedAt } }))
        .catch(() => {});
      return { data, state: "fresh", retryAfter: null, savedAt };
    } catch (_) { /* not JSON (a proxy's HTML page): treat as a failure */ }
  }
  const state = response.status === 429 ? "busy" : "failed";
  const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"), state === "busy" ? 30 : 15);
  return { ...(await fromCache(cache, url) ?? { data: null }), state, retryAfter };
}

/**
 * Loads ``url`` with :func:`getJSON`, calls ``use(data, result)`` with whatever it got (fresh or saved),
 * shows a notice under ``key`` when offline, rate-limited (429) or failing, and tries again after
 * Retry-After until it gets a fresh answer. Returns the first result.
 */
export async function loadWithRetry(key, url, use, options = {}) {
  const result = await getJSON(url, options);
  if (result.data != null) {
    try {
      use(result.data, result);
    } catch (error) {
      console.warn(`${url}: unusable data`, error);
    }
  }
  report(key, result);
  if (result.state !== "fresh") retryLater(() => loadWithRetry(key, url, use, options), result.retryAfter);
  return result;
}

/** Shows what a :func:`getJSON` result means for the user (nothing when fresh). */
export function report(key, result) {
  if (result.state === "fresh") return notice(key, null);
  const saved = result.savedAt ? t("saved", { t: formatTime(result.savedAt, { date: true }) }) : "";
  if (result.state === "offline") return notice(key, result.data != null ? "offline" : "offlineNone", { t: saved });
  return notice(key, result.state, { s: result.retryAfter });
}

/**
 * Loads a base layer (fire_water, roads, districts, facilities) from /apps/data (static, versioned,
 * outside the API's rate limit) into ``use``; saved for offline use; retried while not fresh.
 */
export async function loadLayer(layer, use, used = null) {
  const key = `layer-${layer}`;
  const manifest = await getJSON("/apps/data/manifest.json");
  const url = manifest.data?.layers?.[layer];
  const result = url ? await getJSON(url, { cacheFirst: true })
    : { data: null, state: manifest.state === "fresh" ? "failed" : manifest.state, retryAfter: manifest.retryAfter ?? 15 };
  if (result.data && url !== used) {
    try {
      use(validFeatures(result.data));
      used = url;
    } catch (error) {
      console.warn(`${layer}: unusable data`, error);
    }
  }
  const state = manifest.state !== "fresh" ? manifest : result;
  report(key, { ...state, data: result.data, savedAt: manifest.savedAt });
  if (state.state !== "fresh") retryLater(() => loadLayer(layer, use, used), state.retryAfter ?? 15);
  return result.data;
}

// ---- defensive rendering: data may hold null, NaN, HTML, epoch seconds or garbage ----

/** A Date from an RFC 3339 string, epoch seconds or milliseconds (number or digits); null if invalid. */
export function parseTime(value) {
  if (value == null || value === "" || typeof value === "boolean") return null;
  let date;
  if (typeof value === "number" || (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value))) {
    const n = Number(value);
    if (!Number.isFinite(n)) return null;
    date = new Date(Math.abs(n) < 1e11 ? n * 1000 : n); // below 1e11: seconds (until the year 5138)
  } else if (typeof value === "string") {
    date = new Date(value);
  } else {
    return null;
  }
  const ms = date.getTime();
  return Number.isFinite(ms) && ms > 0 ? date : null;
}

/** A time in the city's zone (Asia/Tokyo), or "—" for a missing or invalid one. */
export function formatTime(value, { date = false } = {}) {
  const d = parseTime(value);
  if (!d) return "—";
  const locale = currentLang === "ja" ? "ja-JP" : "en-GB";
  const options = { timeZone: "Asia/Tokyo", hour: "2-digit", minute: "2-digit" };
  if (date) Object.assign(options, { month: "numeric", day: "numeric" });
  return d.toLocaleString(locale, options);
}

/** A finite number or null (null, NaN, Infinity, "abc", objects). */
export function num(value) {
  if (value == null || value === "" || typeof value === "boolean") return null;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

/** Text for display (always set with textContent, never as HTML): "—" for null, objects shortened. */
export function text(value, max = 120) {
  if (value == null || (typeof value === "number" && !Number.isFinite(value))) return "—";
  const s = typeof value === "object" ? JSON.stringify(value) : String(value);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** Features whose geometry MapLibre can draw (others are skipped, not fatal). */
export function validFeatures(collection) {
  const features = Array.isArray(collection?.features) ? collection.features : [];
  const ok = (c) => Array.isArray(c) && c.length >= 2 && num(c[0]) !== null && num(c[1]) !== null;
  const good = features.filter((f) => {
    const g = f?.geometry;
    if (!g || typeof g !== "object") return false;
    if (g.type === "Point") return ok(g.coordinates);
    if (g.type === "LineString" || g.type === "MultiPoint") return Array.isArray(g.coordinates) && g.coordinates.every(ok);
    if (g.type === "Polygon" || g.type === "MultiLineString") return Array.isArray(g.coordinates) && g.coordinates.flat().every(ok);
    if (g.type === "MultiPolygon") return Array.isArray(g.coordinates) && g.coordinates.flat(2).every(ok);
    return false;
  }).map((f) => ({ ...f, properties: f.properties && typeof f.properties === "object" ? f.properties : {} }));
  return { type: "FeatureCollection", features: good };
}

// ---- the map ----

const EMPTY = { type: "FeatureCollection", features: [] };

/**
 * The apps' map style: the city's configured raster basemap (GSI 地理院タイル in production) if any,
 * under the platform's own layers (district outlines, roads), which are there offline too; plus the
 * app's own ``sources`` and ``layers`` on top. Data is set later with :func:`setData`.
 */
export async function mapStyle({ sources = {}, layers = [] } = {}) {
  const config = (await getJSON("/apps/config.json", { timeoutMs: 4000 })).data ?? {};
  const style = { version: 8, sources: {}, layers: [{ id: "bg", type: "background", paint: { "background-color": "#f4f4f0" } }] };
  if (config.basemap_tiles && navigator.onLine) {
    style.sources.basemap = { type: "raster", tiles: [config.basemap_tiles], tileSize: 256, attribution: text(config.basemap_attribution ?? "") };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  style.sources.districts = { type: "geojson", data: EMPTY };
  style.sources.roads = { type: "geojson", data: EMPTY };
  style.layers.push(
    { id: "districts-fill", type: "fill", source: "districts", paint: { "fill-color": "#000", "fill-opacity": 0 } },
    { id: "roads", type: "line", source: "roads", paint: { "line-color": "#8c8c84", "line-width": 2 } },
    { id: "districts", type: "line", source: "districts", paint: { "line-color": "#5a5a52", "line-width": 1.5, "line-dasharray": [3, 2] } },
  );
  Object.assign(style.sources, sources);
  // the app's areas (fills) under the streets and outlines; its lines and points on top
  const fills = layers.filter((layer) => layer.type === "fill");
  style.layers.splice(style.layers.findIndex((layer) => layer.id === "roads"), 0, ...fills);
  style.layers.push(...layers.filter((layer) => layer.type !== "fill"));
  return style;
}

/** Resolves once the map's style (and so its sources) exist. */
export function styleReady(map) {
  return new Promise((resolve) => {
    const check = () => {
      if (map.getSource("roads")) {
        map.off("styledata", check);
        resolve(map);
      }
    };
    map.on("styledata", check);
    check();
  });
}

/** Sets a GeoJSON source's data as soon as the map can take it. */
export async function setData(map, source, data) {
  if (!map) return;
  await styleReady(map);
  map.getSource(source)?.setData(data);
}

/**
 * A map in #map with the platform's own streets and district outlines (from /apps/data, kept for
 * offline use) and labels for them (DOM labels: they need no glyph server). Returns null without WebGL;
 * the apps' lists work without it.
 */
export async function createMap({ zoom = 13, sources = {}, layers = [], labels = true } = {}) {
  let map = null;
  try {
    map = new maplibregl.Map({ container: "map", style: await mapStyle({ sources, layers }), center: CENTRE, zoom,
      attributionControl: { compact: true } });
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }));
  } catch (error) {
    const el = document.getElementById("map");
    el.textContent = `map unavailable: ${error.message}`;
    el.classList.add("nomap");
    return null;
  }
  window.__map = map;
  const base = { roads: null, districts: null, facilities: null };
  for (const layer of ["districts", "roads"]) {
    loadLayer(layer, (data) => {
      base[layer] = data;
      setData(map, layer, data);
      window.__baseLayers = { ...(window.__baseLayers || {}), [layer]: data.features.length };
      if (labels) placeLabels(map, base);
    });
  }
  if (labels) loadLayer("facilities", (data) => { base.facilities = data; placeLabels(map, base); });
  return map;
}

// Labels drawn as small DOM markers: district names, the main roads' names, landmarks (public
// facilities). Chosen per zoom so they do not crowd a phone screen.
const labelMarkers = [];
function placeLabels(map, base) {
  const candidates = [];
  for (const f of base.districts?.features ?? []) {
    const name = currentLang === "en" ? f.properties.name_en || f.properties.name_ja : f.properties.name_ja;
    const c = centroid(f.geometry);
    if (name && c) candidates.push({ kind: "district", name: text(name, 30), at: c, minZoom: 14 });
  }
  const seen = new Set();
  for (const f of base.roads?.features ?? []) {
    const name = text(f.properties.name, 30);
    if (!f.properties.name || seen.has(name) || f.geometry.type !== "LineString") continue;
    seen.add(name);
    const coords = f.geometry.coordinates;
    candidates.push({ kind: "road", name, at: coords[Math.floor(coords.length / 2)], minZoom: 15 });
  }
  for (const f of base.facilities?.features ?? []) {
    if (f.geometry.type === "Point" && f.properties.name) {
      candidates.push({ kind: "landmark", name: text(f.properties.name, 30), at: f.geometry.coordinates, minZoom: 16.5 });
    }
  }
  for (const m of labelMarkers.splice(0)) m.marker.remove();
  for (const c of candidates) {
    const el = document.createElement("div");
    el.className = `map-label map-label-${c.kind}`;
    el.textContent = c.name;
    el.setAttribute("aria-hidden", "true");
    const marker = new maplibregl.Marker({ element: el }).setLngLat(c.at);
    labelMarkers.push({ marker, minZoom: c.minZoom, on: false });
  }
  const update = () => {
    const z = map.getZoom();
    const bounds = map.getBounds();
    for (const m of labelMarkers) {
      const show = z >= m.minZoom && bounds.contains(m.marker.getLngLat());
      if (show && !m.on) m.marker.addTo(map);
      if (!show && m.on) m.marker.remove();
      m.on = show;
    }
  };
  map.off("moveend", map.__labelUpdate ?? (() => {}));
  map.__labelUpdate = update;
  map.on("moveend", update);
  update();
  window.__labels = labelMarkers.length;
}

function centroid(geometry) {
  const ring = geometry?.type === "Polygon" ? geometry.coordinates[0]
    : geometry?.type === "MultiPolygon" ? geometry.coordinates[0]?.[0] : null;
  if (!ring?.length) return null;
  let x = 0; let y = 0;
  for (const [lon, lat] of ring) { x += lon; y += lat; }
  return [x / ring.length, y / ring.length];
}

/** Scrolls the map into view (on a phone it may be above the list) before moving it. */
export function showOnMap(map, center, zoom) {
  if (!map) return;
  const el = document.getElementById("map");
  const rect = el.getBoundingClientRect();
  if (rect.top < 0 || rect.bottom > window.innerHeight) el.scrollIntoView({ behavior: "smooth", block: "start" });
  map.flyTo({ center, zoom });
}

// ---- geometry ----

const R = 6371000;
export function distanceM([lon1, lat1], [lon2, lat2]) {
  const toRad = (d) => (d * Math.PI) / 180;
  const h = Math.sin(toRad(lat2 - lat1) / 2) ** 2 + Math.cos(toRad(lat1)) * Math.cos(toRad(lat2)) * Math.sin(toRad(lon2 - lon1) / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

export function bearingDeg([lon1, lat1], [lon2, lat2]) {
  const toRad = (d) => (d * Math.PI) / 180;
  const y = Math.sin(toRad(lon2 - lon1)) * Math.cos(toRad(lat2));
  const x = Math.cos(toRad(lat1)) * Math.sin(toRad(lat2)) - Math.sin(toRad(lat1)) * Math.cos(toRad(lat2)) * Math.cos(toRad(lon2 - lon1));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

export function compass(deg, lang = currentLang) {
  const ja = ["北", "北東", "東", "南東", "南", "南西", "西", "北西"];
  const en = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  return (lang === "ja" ? ja : en)[Math.round(deg / 45) % 8];
}
