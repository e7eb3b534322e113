/* The app's service worker: shows a notification for each pushed request, answers Approve and
 * Deny from the notification itself with the device token kept in IndexedDB, and closes the
 * notification when the server says the request was settled. */
'use strict';
importScripts('/app/i18n.js', '/app/device-store.js');

const APP_URL = '/app/';

function texts() {
  const { pickLanguage, makeT } = self.mailotpI18n;
  return makeT(pickLanguage('', self.navigator.languages));
}

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  let msg = null;
  try {
    msg = event.data ? event.data.json() : null;
  } catch {
    msg = null;
  }
  if (!msg) return;
  event.waitUntil(handlePush(msg));
});

/** Chromium and Firefox tolerate a push that closes a notification without showing one; WebKit does not
 * (and, alone of them, has no notification actions, which is how it is told apart). */
function mayPushSilently() {
  return typeof Notification !== 'undefined' && 'maxActions' in Notification;
}

async function handlePush(msg) {
  const t = texts();
  if (msg.kind === 'close' && typeof msg.id === 'string') {
    const tag = 'request-' + msg.id;
    const shown = await self.registration.getNotifications({ tag });
    for (const n of shown) n.close();
    // Safari (iOS, macOS) revokes the subscription of a site that handles pushes without showing
    // anything, so there the request's notification is replaced by a quiet outcome instead.
    if (!mayPushSilently()) {
      const outcome = msg.status === 'approved' ? t('approved') : msg.status === 'denied' ? t('denied') : t('expired');
      await self.registration.showNotification(t('title'), { body: outcome, tag, silent: true, icon: '/app/icons/icon-192.png' });
    }
    return;
  }
  if (msg.kind === 'unbound') return unbound(t, msg.deviceId);
  if (msg.kind === 'notice' && msg.notice) return notice(t, msg.notice);
  if (msg.kind !== 'request' || !msg.request || typeof msg.request.id !== 'string') return;
  const r = msg.request;
  const what = self.mailotpI18n.describe(t, r);
  const numberMatching = Array.isArray(r.choices) && r.choices.length > 0;
  await self.registration.showNotification(t('notifyTitle'), {
    body: numberMatching ? t('notifyBodyNumber', { what }) : what,
    tag: 'request-' + r.id,
    renotify: true,
    requireInteraction: true,
    icon: '/app/icons/icon-192.png',
    timestamp: Date.parse(r.createdAt) || Date.now(),
    data: { id: r.id, numberMatching },
    // Number matching needs the three numbers on screen: a tap opens the app instead.
    actions: numberMatching ? [] : [
      { action: 'approve', title: t('approve') },
      { action: 'deny', title: t('deny') },
    ],
  });
}

self.addEventListener('notificationclick', (event) => {
  const n = event.notification;
  const data = n.data || {};
  n.close();
  if ((event.action === 'approve' || event.action === 'deny') && data.id && !data.numberMatching) {
    event.waitUntil(answer(data.id, event.action));
  } else {
    event.waitUntil(openApp());
  }
});

async function answer(id, decision) {
  const t = texts();
  const creds = await self.mailotpDeviceStore.load().catch(() => null);
  if (!creds) return openApp();
  try {
    const res = await fetch('/api/v1/device/requests/' + encodeURIComponent(id), {
      method: 'POST',
      headers: { authorization: 'Bearer ' + creds.token, 'content-type': 'application/json' },
      body: JSON.stringify({ decision }),
      cache: 'no-store',
      credentials: 'omit',
    });
    // Settled either way (404/409: already answered or expired); the app shows the rest.
    if (res.ok || res.status === 404 || res.status === 409) return;
  } catch {
    // offline: tell the user below
  }
  await self.registration.showNotification(t('title'), { body: t('sendFailed'), tag: 'request-' + id, icon: '/app/icons/icon-192.png' });
}

async function openApp() {
  const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const w of windows) {
    if (new URL(w.url).pathname.startsWith(APP_URL) && 'focus' in w) return w.focus();
  }
  return self.clients.openWindow(APP_URL);
}

/** The device was cleared on the server: its token is useless now. Forget it (when it is this one),
 * close what is on screen, and tell open app pages, which then show that the phone is unbound. */
async function unbound(t, deviceId) {
  const creds = await self.mailotpDeviceStore.load().catch(() => null);
  if (!creds || creds.deviceId !== deviceId) return;
  await self.mailotpDeviceStore.forget().catch(() => undefined);
  for (const n of await self.registration.getNotifications()) n.close();
  // Uncontrolled pages too: an app page opened before this worker took control still listens.
  for (const c of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) c.postMessage({ kind: 'unbound' });
  // WebKit withdraws push from a site whose push shows nothing (see mayPushSilently).
  if (!mayPushSilently()) await self.registration.showNotification(t('title'), { body: t('unboundTitle'), tag: 'unbound', silent: true, icon: '/app/icons/icon-192.png' });
}

/** A notice that needs no answer (a recovery code was used): a notification, and a line in open app pages. */
async function notice(t, n) {
  if (n.kind !== 'recovery-code-used') return;
  const body = t('recoveryUsedText', { user: String(n.user), left: String(n.left) });
  await self.registration.showNotification(t('recoveryUsedTitle'), { body, tag: 'notice-' + n.at, icon: '/app/icons/icon-192.png', timestamp: Number(n.at) || Date.now() });
  for (const c of await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) c.postMessage({ kind: 'notice', text: body });
}
