import type { AuditEntry } from '../core/ports/store.js';

/** The JSON both drivers keep for an entry (the user is also a column or an index key). */
export function auditBody(entry: AuditEntry): string {
  return JSON.stringify({ at: Math.floor(entry.at), event: entry.event, ...(entry.user !== undefined ? { user: entry.user } : {}), fields: entry.fields });
}

/** Parses what auditBody wrote; null for anything else (a damaged row is skipped, not fatal). */
export function parseAuditBody(json: string): AuditEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as { at?: unknown; event?: unknown; user?: unknown; fields?: unknown };
  if (typeof o.at !== 'number' || typeof o.event !== 'string') return null;
  const fields = typeof o.fields === 'object' && o.fields !== null ? (o.fields as Record<string, unknown>) : {};
  return { at: o.at, event: o.event, ...(typeof o.user === 'string' ? { user: o.user } : {}), fields };
}

/** The first time still inside the retention: entries before it are dropped and never returned. */
export function auditCutoff(now: number, retentionMs: number): number {
  return Math.floor(now - retentionMs);
}
