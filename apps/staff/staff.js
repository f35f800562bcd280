// 職員用分析マップ: population aged 65+, bus-stop coverage, accident-risk hotspots and snowplow coverage, with legends;
// plus every layer declared with a staff-map style (gis/layers/*.py, from the apps' manifest).
import { createMap, setData, styleReady, loadWithRetry, loadLayer, getJSON, languageButton, notice, num, text } from "/apps/shared/common.js";

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
    legend: [["#0050d0", "除雪済み", "plowed"], ["#a33a00", "未除雪", "not plowed"]] },
];
const visible = Object.fromEntries(LAYERS.map((layer) => [layer.id, layer.id !== "elderly"]));
const EMPTY = { type: "FeatureCollection", features: [] };
let lang = document.documentElement.lang;
window.__staffLayers = [];

function districtValues(rows, column) {
  const match = ["match", ["get", "code"]];
  for (const row of Array.isArray(rows) ? rows : []) {
    const value = num(row?.[column]);
    if (value !== null && typeof row.district_code === "string") match.push(row.district_code, value);
  }
  match.push(-1);
  return match.length > 4 ? match : -1; // no published district: every district suppressed
}
const vis = (id) => (visible[id] ? "visible" : "none");

const map = await createMap({
  zoom: 12,
  labels: false,
  sources: { hotspots: { type: "geojson", data: EMPTY }, plowed: { type: "geojson", data: EMPTY } },
  layers: [
    { id: "elderly", type: "fill", source: "districts", layout: { visibility: vis("elderly") }, paint: { "fill-opacity": 0.55, "fill-color": "#dddddd" } },
    { id: "coverage", type: "fill", source: "districts", layout: { visibility: vis("coverage") }, paint: { "fill-opacity": 0.55, "fill-color": "#cccccc" } },
    { id: "hotspots", type: "fill", source: "hotspots", layout: { visibility: vis("hotspots") }, paint: { "fill-opacity": 0.8,
      "fill-color": ["case", ["==", ["get", "latent"], true], "#d7191c", "#fdae61"] } },
    { id: "plowed", type: "line", source: "plowed", layout: { visibility: vis("plowed") }, paint: { "line-width": 3,
      "line-color": ["case", ["==", ["get", "plowed"], true], "#0050d0", "#a33a00"] } },
  ],
});

function renderLegend() {
  lang = document.documentElement.lang;
  document.getElementById("legend").replaceChildren(...LAYERS.flatMap((layer) => layer.legend.map(([color, ja, en]) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = color;
    li.append(swatch, `${layer[lang]}: ${lang === "ja" ? ja : en}`);
    return li;
  })));
  const toggles = document.getElementById("toggles");
  toggles.replaceChildren(toggles.querySelector("legend"), ...LAYERS.map((layer) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = visible[layer.id]; // the map's state, kept across language switches
    box.id = `toggle-${layer.id}`;
    box.addEventListener("change", () => {
      visible[layer.id] = box.checked;
      if (map?.getLayer(layer.id)) map.setLayoutProperty(layer.id, "visibility", vis(layer.id));
    });
    label.append(box, layer[lang]);
    return label;
  }));
}

function loaded(id) {
  if (!window.__staffLayers.includes(id)) window.__staffLayers.push(id);
  if (window.__staffLayers.length === LAYERS.filter((layer) => !layer.declared).length) notice("loading", null);
}

// Layers declared with a staff-map style (gis/layers/*.py), listed with their style in /apps/data/manifest.json:
// each drawn from its /apps/data file under its own toggle and legend line, with no code here.
const PAINT = {
  circle: (color) => ({ "circle-radius": 5, "circle-color": color, "circle-stroke-color": "#ffffff", "circle-stroke-width": 1 }),
  line: (color) => ({ "line-width": 2, "line-color": color }),
  fill: (color) => ({ "fill-opacity": 0.4, "fill-color": color }),
};
window.__declaredLayers = [];
async function addDeclaredLayers() {
  const manifest = await getJSON("/apps/data/manifest.json");
  for (const [id, style] of Object.entries(manifest.data?.styles ?? {})) {
    if (!PAINT[style?.kind] || !/^#[0-9a-f]{6}$/i.test(style.color ?? "") || LAYERS.some((layer) => layer.id === id)) continue;
    LAYERS.push({ id, ja: text(style.ja), en: text(style.en), declared: true,
      legend: [[style.color, "地点", "sites"]] });
    visible[id] = true;
    if (map) {
      await styleReady(map);
      map.addSource(id, { type: "geojson", data: EMPTY });
      map.addLayer({ id, type: style.kind, source: id, layout: { visibility: vis(id) }, paint: PAINT[style.kind](style.color) });
    }
    loadLayer(id, (data) => {
      setData(map, id, data);
      if (!window.__declaredLayers.includes(id)) window.__declaredLayers.push(id);
    });
  }
  renderLegend();
}

async function paint(id, property, value) {
  if (!map) return;
  await styleReady(map);
  if (map.getLayer(id)) map.setPaintProperty(id, property, value);
}

notice("loading", "loading");
loadWithRetry("population", "/api/v1/gis/population", (data) => {
  const v = districtValues(data?.items, "share_65_plus");
  paint("elderly", "fill-color", ["case", ["<", v, 0], "#dddddd", ["<", v, 0.25], "#fee6ce", ["<", v, 0.35], "#fdae6b", "#e6550d"]);
  loaded("elderly");
});
loadWithRetry("bus", "/api/v1/gis/bus-coverage", (data) => {
  const v = districtValues(data?.items, "share_500m");
  paint("coverage", "fill-color", ["case", ["<", v, 0], "#cccccc", ["<", v, 0.6], "#b30000", ["<", v, 0.85], "#ffd400", "#1a9850"]);
  loaded("coverage");
});
loadWithRetry("hotspots", "/api/v1/gis/hotspots?permutations=99", (data) => {
  setData(map, "hotspots", { type: "FeatureCollection", features: (data?.features ?? []).filter((f) => f?.geometry && f.properties?.hot) });
  loaded("hotspots");
});
loadWithRetry("plowed", "/api/v1/gis/snowplow-coverage?hours=12", (data) => {
  setData(map, "plowed", { type: "FeatureCollection", features: (data?.features ?? []).filter((f) => f?.geometry) });
  loaded("plowed");
});
languageButton(TEXTS, renderLegend);
renderLegend();
addDeclaredLayers();
