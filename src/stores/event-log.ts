import { REQUEST_EVENT_TYPES, type PublishedEvent, type RequestEvent, type StoreEvent } from '../core/types.js';
import type { EventLogRead, LoggedEvent } from '../core/ports/store.js';

/** One entry of a device's event log, as both drivers keep it. */
export interface LogEntry {
  event: LoggedEvent;
  /** When it was appended, by the appender's clock. */
  at: number;
}

/** A published event of any kind (a Redis message is checked with this before it is handed on). */
export function isPublishedEvent(v: unknown): v is PublishedEvent {
  if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'pairing.link') return typeof (v as { linkId?: unknown }).linkId === 'string';
  return isStoreEvent(v);
}

export function isStoreEvent(v: unknown): v is StoreEvent {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as { type?: unknown; request?: unknown; deviceId?: unknown; notice?: unknown };
  if (e.type === 'device.notice') {
    const n = e.notice as { kind?: unknown; user?: unknown; left?: unknown; at?: unknown } | null | undefined;
    return typeof e.deviceId === 'string' && typeof n === 'object' && n !== null && n.kind === 'recovery-code-used' && typeof n.user === 'string' && typeof n.left === 'number' && typeof n.at === 'number';
  }
  return REQUEST_EVENT_TYPES.includes(e.type as RequestEvent['type']) && typeof e.request === 'object' && e.request !== null;
}

/** Only the event's own fields (a logged or published one also carries `at` and `eventId`). */
export function eventFields<E extends PublishedEvent>(v: E): E;
export function eventFields(v: PublishedEvent): PublishedEvent {
  if (v.type === 'pairing.link') return { type: v.type, linkId: v.linkId };
  return v.type === 'device.notice' ? { type: v.type, deviceId: v.deviceId, notice: v.notice } : { type: v.type, request: v.request };
}

/** The event without an eventId it may already carry: the log gives it its own. */
export function withoutId(event: StoreEvent): StoreEvent {
  const copy = { ...event };
  delete copy.eventId;
  return copy;
}

/**
 * The JSON the Redis log stores and publishes, with `at` as its first field so that the Lua side can
 * splice `"eventId":N` in front and read `at` back with a fixed pattern, never re-encoding JSON.
 */
export function entryBody(event: StoreEvent, at: number): string {
  return JSON.stringify({ at: Math.floor(at), ...withoutId(event) });
}

/** Parses `{"eventId":N,"at":T,...event}`; null when it is not one. */
export function parseEntry(json: string): LogEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (!isStoreEvent(v)) return null;
  const { eventId, at } = v as { eventId?: unknown; at?: unknown };
  if (typeof eventId !== 'number' || typeof at !== 'number') return null;
  return { event: { ...eventFields(v), eventId }, at };
}

/**
 * What a reader after `afterId` gets from a log whose dropped events go up to `floor`. Entries past
 * the retention are left out and count as dropped, so the answer does not depend on when the last
 * append happened to trim them. An id above `head` (the last id given out) was never given out by
 * this store: it is from before the store was wiped, and the reader has to start over too.
 */
export function resolveRead(entries: readonly LogEntry[], floor: number, head: number, afterId: number, now: number, retentionMs: number): EventLogRead {
  const cutoff = now - retentionMs;
  let dropped = floor;
  const events: LoggedEvent[] = [];
  for (const e of entries) {
    if (e.at < cutoff) dropped = Math.max(dropped, e.event.eventId);
    else if (e.event.eventId > afterId) events.push(e.event);
  }
  events.sort((a, b) => a.eventId - b.eventId);
  return { events, complete: afterId >= dropped && afterId <= head };
}
