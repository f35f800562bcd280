// Shared by the living-lab apps: language toggle (Japanese first), map styles, geometry helpers.
import * as maplibregl from "/apps/vendor/maplibre-gl/maplibre-gl.mjs";

export { maplibregl };

export const CENTRE = [139.9297, 37.4947]; // 会津若松市役所

export function setLanguage(lang, texts) {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-t]")) {
    const entry = texts[el.dataset.t];
    if (entry) el.textContent = entry[lang];
  }
  localStorage.setItem("cityos-lang", lang);
}

export function initialLanguage() {
  return localStorage.getItem("cityos-lang") || "ja";
}

// Basemap: the city's configured raster tiles (GSI 地理院タイル in production), or an offline
// style drawn from the platform's own layers when none is configured or the network is down.
export async function mapStyle() {
  let config = {};
  try {
    config = await (await fetch("/apps/config.json")).json();
  } catch (_) { /* offline: fall back */ }
  const style = { version: 8, sources: {}, layers: [{ id: "bg", type: "background", paint: { "background-color": "#f4f4f0" } }] };
  if (config.basemap_tiles) {
    style.sources.basemap = { type: "raster", tiles: [config.basemap_tiles], tileSize: 256, attribution: config.basemap_attribution || "" };
    style.layers.push({ id: "basemap", type: "raster", source: "basemap" });
  }
  style.sources.districts = { type: "geojson", data: "/ogc/collections/districts/items?limit=1000" };
  style.sources.roads = { type: "geojson", data: "/ogc/collections/roads/items?limit=10000" };
  style.layers.push(
    { id: "districts", type: "line", source: "districts", paint: { "line-color": "#8a8a80", "line-width": 1 } },
    { id: "roads", type: "line", source: "roads", paint: { "line-color": "#b0b0a8", "line-width": 2 } },
  );
  return style;
}

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

export function compass(deg, lang) {
  const ja = ["北", "北東", "東", "南東", "南", "南西", "西", "北西"];
  const en = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"];
  return (lang === "ja" ? ja : en)[Math.round(deg / 45) % 8];
}
