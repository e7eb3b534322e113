import type { Message } from 'firebase-admin/messaging';
import { cleanClientName } from '../core/client-name.js';
import type { RequestRecord } from '../core/types.js';
import type { DeviceNotice } from '../core/ports/notifier.js';

/** How long a clear may wait for an offline phone: the notification it removes may still be shown. */
export const CLEAR_TTL_MS = 3_600_000;

const PROTOCOL_LABEL: Record<RequestRecord['protocol'], string> = {
  imap: 'IMAP',
  pop3: 'POP3',
  smtp: 'SMTP',
  web: 'the web',
};

function clientLabel(name: string | undefined): string {
  // Cleaned when the request was created (RequestService); cleaned again here because the text goes
  // straight onto the lock screen, whatever an older record holds.
  return cleanClientName(name) ?? 'a mail app';
}

/** The question the phone shows: who wants in, over what, from where. */
export function notificationText(r: RequestRecord): { title: string; body: string } {
  const title =
    r.type === 'login'
      ? `Approve a sign-in on ${PROTOCOL_LABEL[r.protocol]} from ${r.clientIp}?`
      : `Approve ${clientLabel(r.clientName)} on ${PROTOCOL_LABEL[r.protocol]} from ${r.clientIp}?`;
  let body = `Sign-in as ${r.user}. Open the app to approve or deny.`;
  if (r.choices && r.choices.length > 0) body += ' Pick the number shown on the sign-in page.';
  return { title, body };
}

/**
 * The message for an opened request: a notification a person can act on, plus the request as data
 * (FCM data values are strings) so the app can show it without asking the device API first.
 * Android's tag and APNs's collapse id are the request id, so the clear message can remove it.
 */
export function requestMessage(r: RequestRecord, token: string, now: number, publicUrl?: string): Message {
  const data: Record<string, string> = {
    action: 'request',
    requestId: r.id,
    type: r.type,
    user: r.user,
    protocol: r.protocol,
    clientIp: r.clientIp,
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
  };
  if (r.clientName) data.clientName = r.clientName;
  if (r.choices && r.choices.length > 0) data.choices = JSON.stringify(r.choices);
  if (publicUrl) data.portalUrl = publicUrl;
  // Whole seconds: FCM and APNs count in seconds, and a late notification is useless.
  const ttlSeconds = Math.max(0, Math.floor((r.expiresAt - now) / 1000));
  return {
    token,
    data,
    notification: notificationText(r),
    android: { priority: 'high', ttl: ttlSeconds * 1000, notification: { tag: r.id } },
    apns: {
      headers: {
        'apns-priority': '10',
        'apns-push-type': 'alert',
        'apns-expiration': String(Math.floor(r.expiresAt / 1000)),
        'apns-collapse-id': r.id,
      },
    },
  };
}

/**
 * Data only, so nothing is shown: it tells the app to remove the request's notification. On iOS a
 * background push (content-available, priority 5, as APNs requires for that type).
 */
export function clearMessage(r: RequestRecord, token: string, now: number): Message {
  return {
    token,
    data: { action: 'clear', requestId: r.id, status: r.status },
    android: { priority: 'high', ttl: CLEAR_TTL_MS },
    apns: {
      headers: {
        'apns-priority': '5',
        'apns-push-type': 'background',
        'apns-expiration': String(Math.floor((now + CLEAR_TTL_MS) / 1000)),
      },
      payload: { aps: { contentAvailable: true } },
    },
  };
}

/** A notice (a recovery code was used): shown at once; the app reads `action: "notice"` and `left`. */
export function noticeMessage(n: DeviceNotice, token: string): Message {
  const body = `A recovery code was used to sign in as ${n.user}; ${n.left} left. If this was not you, change your password now.`;
  return {
    token,
    notification: { title: 'Recovery code used', body },
    data: { action: 'notice', kind: n.kind, user: n.user, left: String(n.left), at: new Date(n.at).toISOString() },
    android: { priority: 'high', ttl: CLEAR_TTL_MS * 12 },
    apns: { headers: { 'apns-priority': '10', 'apns-push-type': 'alert' } },
  };
}
