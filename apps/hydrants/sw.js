// Offline after ONE visit. The app shell (page, scripts, MapLibre, styles) is cached at install and
// served network-first (so updates arrive) with the cache as fallback; lookups ignore Vary, because
// module scripts are requested with an Origin header and the install-time copies without one. The
// data (hydrants, streets, district outlines, statuses) is kept by the page itself in the
// "cityos-data-v1" cache as it loads it, so the first visit's data is there even before this worker
// controlled the page; at install this worker also fetches the base layers once, in case the page
// was closed before they arrived.
const SHELL_CACHE = "cityos-hydrants-shell-v2";
const DATA_CACHE = "cityos-data-v1";
const SHELL = [
  "/apps/hydrants/", "/apps/hydrants/hydrants.js", "/apps/shared/common.js", "/apps/shared/outbox.js",
  "/apps/shared/app.css", "/apps/vendor/maplibre-gl/maplibre-gl.mjs", "/apps/vendor/maplibre-gl/maplibre-gl-shared.mjs",
  "/apps/vendor/maplibre-gl/maplibre-gl-worker.mjs", "/apps/vendor/maplibre-gl/maplibre-gl.css", "/apps/config.json",
];
const SHELL_PATHS = new Set(SHELL.concat(["/apps/hydrants/index.html"]));
const NETWORK_TIMEOUT_MS = 6000;

async function precacheData() {
  const cache = await caches.open(DATA_CACHE);
  const response = await fetch("/apps/data/manifest.json");
  if (!response.ok) return;
  const text = await response.text();
  const savedAt = new Date().toISOString();
  await cache.put("/apps/data/manifest.json", new Response(text, { headers: { "content-type": "application/json", "x-saved-at": savedAt } }));
  for (const url of Object.values(JSON.parse(text).layers || {})) {
    if (await cache.match(url)) continue;
    const layer = await fetch(url);
    if (layer.ok) await cache.put(url, new Response(await layer.text(), { headers: { "content-type": "application/json", "x-saved-at": savedAt } }));
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(SHELL);
    await precacheData().catch(() => {}); // best effort: the page keeps what it loads anyway
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("cityos-hydrants-") && name !== SHELL_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), ms))]);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const navigation = request.mode === "navigate" && url.pathname.startsWith("/apps/hydrants/");
  if (!navigation && !SHELL_PATHS.has(url.pathname)) return; // data: the page keeps its own copies
  event.respondWith((async () => {
    const cache = await caches.open(SHELL_CACHE);
    const key = navigation ? "/apps/hydrants/" : url.pathname;
    try {
      const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS);
      if (response.ok) await cache.put(key, response.clone());
      return response;
    } catch (error) {
      const cached = await cache.match(key, { ignoreVary: true, ignoreSearch: true });
      if (cached) return cached;
      throw error;
    }
  })());
});
