import { randomBytes } from 'node:crypto';
import { auditBody, auditCutoff, parseAuditBody } from './audit-log.js';
import { VALUE_GRACE_MS, type RedisKeys } from './keys.js';
import type { ScriptedRedis } from './redis-scripts.js';
import type { AuditEntry, AuditQuery } from '../core/ports/store.js';

/** Entries past the retention removed by one append, at most. */
const TRIM_PER_APPEND = 1000;

function parseMember(member: string): AuditEntry | null {
  const bar = member.indexOf('|');
  return bar < 0 ? null : parseAuditBody(member.slice(bar + 1));
}

type Run = <T>(fn: (r: ScriptedRedis) => Promise<T>) => Promise<T>;

/**
 * The audit trail of the Redis store: a sorted set of every entry by time, and one per user (the
 * `--user` query), both trimmed to the retention on every append (reads leave older ones out). A user's set also expires after
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
      // The entries past the retention leave every user's set too, not only the one of whoever comes
      // next: a few per append (bounded work), oldest first, until none is left.
      const old = await r.zrangebyscore(all, '-inf', `(${cutoff}`, 'LIMIT', 0, TRIM_PER_APPEND);
      const m = r.multi();
      const users = new Set<string>();
      for (const member of old) {
        const u = parseMember(member)?.user;
        if (u !== undefined) users.add(u);
      }
      if (old.length > 0) m.zrem(all, ...old);
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
      const e = parseMember(member);
      if (e) out.push(e);
    }
    return out.reverse();
  }
}
