import { eventDeviceId, type RequestEvent, type RequestRecord, type StoreEvent } from '../core/types.js';
import { entryBody, parseEntry, resolveRead, withoutId, type LogEntry } from './event-log.js';
import { EVENT_LOG_IDLE_TTL_MS, type RedisKeys } from './keys.js';
import type { ScriptedRedis } from './redis-scripts.js';
import type { EventLogRead, LoggedEvent, LoggedRequestEvent } from '../core/ports/store.js';

type Run = <T>(fn: (r: ScriptedRedis) => Promise<T>) => Promise<T>;

/**
 * The device event logs and the expiry sweep of the Redis store. Ids come from one INCR inside the
 * same script that appends and publishes, so id order is commit order on every instance.
 */
export class RedisEventLog {
  constructor(
    private readonly run: Run,
    private readonly keys: RedisKeys,
    private readonly channel: string,
  ) {}

  async append(event: StoreEvent, now: number, retentionMs: number): Promise<LoggedEvent> {
    const deviceId = eventDeviceId(event);
    const id = await this.run((r) =>
      r.mailotpAppendEvent(
        this.keys.eventSeq(),
        this.keys.eventLog(deviceId),
        this.keys.eventFloor(deviceId),
        entryBody(event, now),
        Math.floor(now),
        retentionMs,
        EVENT_LOG_IDLE_TTL_MS,
        this.channel,
      ),
    );
    return { ...withoutId(event), eventId: Number(id) };
  }

  async read(deviceId: string, afterId: number, now: number, retentionMs: number): Promise<EventLogRead> {
    return this.run(async (r) => {
      // One MULTI, so the entries, the floor and the head are from the same moment.
      const replies = await r
        .multi()
        .zrange(this.keys.eventLog(deviceId), 0, -1)
        .get(this.keys.eventFloor(deviceId))
        .get(this.keys.eventSeq())
        .exec();
      const reply = (i: number): unknown => {
        const [err, value] = replies?.[i] ?? [new Error('transaction aborted'), null];
        if (err) throw err;
        return value;
      };
      const members = reply(0) as string[] | null;
      const floor = reply(1) as string | null;
      const head = reply(2) as string | null;
      const entries: LogEntry[] = [];
      for (const m of (members ?? []) as string[]) {
        const e = parseEntry(m);
        if (e) entries.push(e);
      }
      return resolveRead(entries, Number(floor ?? 0), Number(head ?? 0), afterId, now, retentionMs);
    });
  }

  async lastId(): Promise<number> {
    return this.run(async (r) => Number((await r.get(this.keys.eventSeq())) ?? 0));
  }

  /**
   * Candidates come from the expiry index; each one is claimed by a compare-and-set on its whole
   * record, so of several instances sweeping at once exactly one wins it, and a decision that lands
   * first wins over the sweep.
   */
  async expire(now: number, limit: number, retentionMs: number): Promise<LoggedRequestEvent[]> {
    const index = this.keys.requestExpiry();
    return this.run(async (r) => {
      const ids = await r.zrangebyscore(index, '-inf', Math.floor(now), 'LIMIT', 0, limit);
      if (ids.length === 0) return [];
      const raws = await r.mget(ids.map((id) => this.keys.request(id)));
      const out: LoggedRequestEvent[] = [];
      const gone: string[] = [];
      for (const [i, id] of ids.entries()) {
        const raw = raws[i] ?? null;
        const q = raw === null ? null : (JSON.parse(raw) as RequestRecord);
        // Decided or vanished (TTL, device removed): nothing to announce, and it never becomes pending again.
        if (raw === null || q === null || q.status !== 'pending') {
          gone.push(id);
          continue;
        }
        if (q.expiresAt > now) continue;
        const next: RequestRecord = { ...q, status: 'expired' };
        const event: RequestEvent = { type: 'request.expired', request: next };
        const eventId = Number(
          await r.mailotpExpireRequest(
            this.keys.request(id),
            this.keys.devicePending(q.deviceId),
            this.keys.openRequest(q.user, q.clientIp, q.type),
            index,
            this.keys.eventSeq(),
            this.keys.eventLog(q.deviceId),
            this.keys.eventFloor(q.deviceId),
            raw,
            JSON.stringify(next),
            id,
            entryBody(event, now),
            Math.floor(now),
            retentionMs,
            EVENT_LOG_IDLE_TTL_MS,
            this.channel,
          ),
        );
        if (eventId > 0) out.push({ ...event, eventId });
      }
      if (gone.length > 0) await r.zrem(index, ...gone);
      return out;
    });
  }
}
