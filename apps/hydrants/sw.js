// Offline after the first visit: the app shell is cached on install; data is served network-first
// and kept, so the last hydrants seen are there when the network is not.
const CACHE = "cityos-hydrants-v1";
const SHELL = [
  "/apps/hydrants/", "/apps/hydrants/hydrants.js", "/apps/shared/common.js", "/apps/shared/app.css",
  "/apps/vendor/maplibre-gl/maplibre-gl.mjs", "/apps/vendor/maplibre-gl/maplibre-gl-shared.mjs",
  "/apps/vendor/maplibre-gl/maplibre-gl-worker.mjs", "/apps/vendor/maplibre-gl/maplibre-gl.css", "/apps/config.json",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(event.request);
      if (response.ok) cache.put(event.request, response.clone());
      return response;
    } catch (error) {
      const cached = await cache.match(event.request, { ignoreSearch: false });
      if (cached) return cached;
      const url = new URL(event.request.url);
      if (url.pathname.startsWith("/ogc/collections/fire_water/items")) {
        // another bbox than the one saved: any saved hydrant data is better than none
        const keys = await cache.keys();
        const saved = keys.find((k) => new URL(k.url).pathname === url.pathname);
        if (saved) return cache.match(saved);
      }
      throw error;
    }
  })());
});
