// 職員用分析マップ: population aged 65+, bus-stop coverage, accident-risk hotspots and snowplow coverage, with legends.
import { maplibregl, CENTRE, mapStyle, setLanguage, initialLanguage } from "/apps/shared/common.js";

const TEXTS = { title: { ja: "職員用分析マップ", en: "Staff analysis map" }, layers: { ja: "レイヤー", en: "Layers" },
  legend: { ja: "凡例", en: "Legend" } };
const LAYERS = [
  { id: "elderly", ja: "65歳以上の割合（地区別）", en: "Share of residents aged 65+",
    legend: [["#fee6ce", "< 25 %", "< 25 %"], ["#fdae6b", "25-35 %", "25-35 %"], ["#e6550d", "> 35 %", "> 35 %"], ["#dddddd", "非表示（少人数）", "suppressed (small)"]] },
  { id: "coverage", ja: "バス停500m圏の人口割合", en: "Residents within 500 m of a stop",
    legend: [["#b30000", "< 60 %（不便地域）", "< 60 % (badly served)"], ["#ffd400", "60-85 %", "60-85 %"], ["#1a9850", "> 85 %", "> 85 %"], ["#cccccc", "非表示（少人数）", "suppressed (small)"]] },
  { id: "hotspots", ja: "事故危険箇所（急ブレーキ Gi*）", en: "Accident-risk hotspots (harsh-brake Gi*)",
    legend: [["#d7191c", "潜在的危険箇所（事故記録なし）", "latent: no recorded accidents"], ["#fdae61", "ホットスポット", "hot spot"]] },
  { id: "plowed", ja: "除雪状況（12時間）", en: "Snowplow coverage (12 h)",
    legend: [["#0070f0", "除雪済み", "plowed"], ["#999999", "未除雪", "not plowed"]] },
];
let lang = initialLanguage();
window.__staffLayers = [];

let map = null;
try {
  map = new maplibregl.Map({ container: "map", style: await mapStyle(), center: CENTRE, zoom: 12 });
} catch (error) {
  document.getElementById("map").textContent = `map unavailable: ${error.message}`;
}

function renderLegend() {
  const ul = document.getElementById("legend");
  ul.replaceChildren(...LAYERS.flatMap((layer) => layer.legend.map(([color, ja, en]) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="swatch" style="background:${color}"></span>`;
    li.append(`${layer[lang]}: ${lang === "ja" ? ja : en}`);
    return li;
  })));
  const toggles = document.getElementById("toggles");
  toggles.replaceChildren(...LAYERS.map((layer) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = layer.id !== "elderly"; box.id = `toggle-${layer.id}`;
    box.addEventListener("change", () => map?.setLayoutProperty(layer.id, "visibility", box.checked ? "visible" : "none"));
    label.append(box, ` ${layer[lang]}`);
    return label;
  }));
}

function districtValues(rows, column) {
  const match = ["match", ["get", "code"]];
  for (const row of rows) if (row[column] != null) match.push(row.district_code, row[column]);
  match.push(-1);
  return match.length > 4 ? match : -1;  // no published district: every district suppressed
}

async function addLayers() {
  const population = (await (await fetch("/api/v1/gis/population")).json()).items;
  const elderly = districtValues(population, "share_65_plus");
  map?.addLayer({ id: "elderly", type: "fill", source: "districts", layout: { visibility: "none" },
    paint: { "fill-opacity": 0.55, "fill-color": ["case", ["<", elderly, 0], "#dddddd", ["<", elderly, 0.25], "#fee6ce",
      ["<", elderly, 0.35], "#fdae6b", "#e6550d"] } }, "districts");
  window.__staffLayers.push("elderly");
  const coverage = (await (await fetch("/api/v1/gis/bus-coverage")).json()).items;
  const share = districtValues(coverage, "share_500m");
  if (map) {
    map.addLayer({ id: "coverage", type: "fill", source: "districts", paint: { "fill-opacity": 0.55,
      "fill-color": ["case", ["<", share, 0], "#cccccc", ["<", share, 0.6], "#b30000", ["<", share, 0.85], "#ffd400", "#1a9850"] } }, "districts");
  }
  window.__staffLayers.push("coverage");
  const hot = await (await fetch("/api/v1/gis/hotspots?permutations=99")).json();
  hot.features = hot.features.filter((f) => f.properties.hot);
  map?.addSource("hotspots", { type: "geojson", data: hot });
  map?.addLayer({ id: "hotspots", type: "fill", source: "hotspots", paint: { "fill-opacity": 0.8,
    "fill-color": ["case", ["get", "latent"], "#d7191c", "#fdae61"] } });
  window.__staffLayers.push("hotspots");
  const plowed = await (await fetch("/api/v1/gis/snowplow-coverage?hours=12")).json();
  map?.addSource("plowed", { type: "geojson", data: plowed });
  map?.addLayer({ id: "plowed", type: "line", source: "plowed", paint: { "line-width": 3,
    "line-color": ["case", ["get", "plowed"], "#0070f0", "#999999"] } });
  window.__staffLayers.push("plowed");
}

if (map) map.on("load", addLayers); else addLayers();
document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "ja" ? "en" : "ja";
  document.getElementById("lang").textContent = lang === "ja" ? "EN" : "日本語";
  setLanguage(lang, TEXTS);
  renderLegend();
});
setLanguage(lang, TEXTS);
renderLegend();
