import { randomBytes } from 'node:crypto';
import { auditBody, auditCutoff, parseAuditBody } from './audit-log.js';
import { VALUE_GRACE_MS, type RedisKeys } from './keys.js';
import type { ScriptedRedis } from './redis-scripts.js';
import type { AuditEntry, AuditQuery } from './store.js';

type Run = <T>(fn: (r: ScriptedRedis) => Promise<T>) => Promise<T>;

/**
 * The audit trail of the Redis store: a sorted set of every entry by time, and one per user (the
 * `--user` query), both trimmed to the retention on every append. A user's set also expires after
 * a retention without events, so names that stop logging in leave nothing behind.
 * Members are `<seq>:<nonce>|<body>`: the sequence keeps one instance's entries of the same
 * millisecond in order, the nonce keeps equal entries of two instances apart.
 */
export class RedisAuditLog {
  private seq = 0;
  private readonly nonce = randomBytes(4).toString('hex');

  constructor(
    private readonly run: Run,
    private readonly keys: RedisKeys,
  ) {}

  async append(entries: readonly AuditEntry[], now: number, retentionMs: number): Promise<void> {
    const cutoff = auditCutoff(now, retentionMs);
    const all = this.keys.audit();
    await this.run(async (r) => {
      const m = r.multi();
      const users = new Set<string>();
      for (const e of entries) {
        this.seq = (this.seq + 1) % 1e12;
        const member = `${String(this.seq).padStart(12, '0')}:${this.nonce}|${auditBody(e)}`;
        const at = Math.floor(e.at);
        m.zadd(all, at, member);
        if (e.user !== undefined) {
          m.zadd(this.keys.auditOf(e.user), at, member);
          users.add(e.user);
        }
      }
      m.zremrangebyscore(all, '-inf', `(${cutoff}`);
      for (const u of users) {
        m.zremrangebyscore(this.keys.auditOf(u), '-inf', `(${cutoff}`);
        m.pexpire(this.keys.auditOf(u), Math.max(1, Math.ceil(retentionMs + VALUE_GRACE_MS)));
      }
      const results = await m.exec();
      const failed = results?.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    });
  }

  async read(q: AuditQuery, now: number, retentionMs: number): Promise<AuditEntry[]> {
    const from = Math.max(q.since, auditCutoff(now, retentionMs));
    const key = q.user !== undefined ? this.keys.auditOf(q.user) : this.keys.audit();
    const members = await this.run((r) => r.zrevrangebyscore(key, '+inf', from, 'LIMIT', 0, q.limit));
    const out: AuditEntry[] = [];
    for (const member of members) {
      const bar = member.indexOf('|');
      const e = bar < 0 ? null : parseAuditBody(member.slice(bar + 1));
      if (e) out.push(e);
    }
    return out.reverse();
  }
}
