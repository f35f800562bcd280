// A small outbox in IndexedDB: reports made without a connection wait here and are sent when the
// network is back (on the "online" event, at start-up and every 20 s while any wait).
const DB = "cityos-outbox";
const STORE = "requests";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function run(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result?.result);
      tx.onerror = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** Queues ``{url, body, meta}`` (a JSON POST); resolves to its id. */
export function enqueue(item) {
  return run("readwrite", (store) => store.add({ ...item, queuedAt: new Date().toISOString() }));
}

/** Every waiting request, oldest first. */
export function pending() {
  return run("readonly", (store) => store.getAll()).then((items) => items ?? []);
}

function remove(id) {
  return run("readwrite", (store) => store.delete(id));
}

let flushing = null;

/**
 * Sends every waiting request; a request is removed once the server answered it (accepted, or refused
 * for good with a 4xx other than 429); network errors, 429 and 5xx keep it for the next try.
 * ``onResult(item, response)`` is told of each answered one. Resolves to the number still waiting.
 */
export function flush(onResult) {
  flushing ??= (async () => {
    try {
      for (const item of await pending()) {
        let response;
        try {
          response = await fetch(item.url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(item.body) });
        } catch (_) {
          break; // still offline
        }
        if (response.status === 429 || response.status >= 500) break;
        await remove(item.id);
        onResult?.(item, response);
      }
      return (await pending()).length;
    } finally {
      flushing = null;
    }
  })();
  return flushing;
}

/** Flushes now, when the browser comes back online and every ``everyMs`` while requests wait. */
export function keepFlushing(onResult, everyMs = 20_000) {
  const go = () => flush(onResult).catch(() => {});
  window.addEventListener("online", go);
  setInterval(async () => { if ((await pending().catch(() => [])).length) go(); }, everyMs);
  go();
}
