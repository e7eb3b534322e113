/* The device's credentials {token, deviceId, user} in IndexedDB, where both the page and the
 * service worker (for notification actions) can read them. A classic script: one global. */
'use strict';
(function (root) {
  const DB = 'mailotp';
  const STORE = 'kv';
  const KEY = 'device';

  function open() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  async function run(mode, fn) {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(STORE, mode);
        const req = fn(tx.objectStore(STORE));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = () => reject(tx.error);
        tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  root.mailotpDeviceStore = {
    /** The saved credentials, or null. */
    async load() {
      const v = await run('readonly', (s) => s.get(KEY));
      return v && typeof v.token === 'string' ? v : null;
    },
    save(creds) {
      return run('readwrite', (s) => s.put({ token: creds.token, deviceId: creds.deviceId, user: creds.user }, KEY));
    },
    forget() {
      return run('readwrite', (s) => s.delete(KEY));
    },
  };
})(self);
