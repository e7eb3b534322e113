import { AUDIT_EVENTS } from './logger.js';

const AUDIT = new Set<string>(AUDIT_EVENTS);
/** pino's own fields (the store keeps its own time; the message repeats the event) and the internal component name. */
const META = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'event', 'component']);

export type AuditRecorder = (event: string, fields: Record<string, unknown>) => void;

/** Lines logged before the recorder exists (start-up) that are kept for it; later ones are dropped. */
const MAX_EARLY = 1_000;

/**
 * A pino destination that hands every audit event (a line whose `event` is in AUDIT_EVENTS) to the
 * audit trail. It sees the line as written, after pino's redaction, so the stored trail holds
 * exactly what the log holds: the same fields, no password, token or secret.
 */
export class AuditTee {
  private recorder: AuditRecorder | null = null;
  private early: [string, Record<string, unknown>][] = [];

  /** From now on events go to `recorder`; those logged before are handed over first. */
  attach(recorder: AuditRecorder): void {
    this.recorder = recorder;
    for (const [event, fields] of this.early) recorder(event, fields);
    this.early = [];
  }

  write(line: string): void {
    // Most lines are not audit events: skip them without parsing.
    if (!line.includes('"event":"')) return;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      const event = o.event;
      if (typeof event !== 'string' || !AUDIT.has(event)) return;
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) if (!META.has(k)) fields[k] = v;
      if (this.recorder) this.recorder(event, fields);
      else if (this.early.length < MAX_EARLY) this.early.push([event, fields]);
    } catch {
      // A line that is not JSON is no audit event; the log itself is never disturbed by the tee.
    }
  }
}
