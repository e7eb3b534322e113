import type { ApprovalRecord } from '../core/types.js';
import { APPROVAL_GRACE_MS, type RedisKeys } from './keys.js';
import type { ScriptedRedis } from './redis-scripts.js';

type Run = <T>(fn: (r: ScriptedRedis) => Promise<T>) => Promise<T>;

function byApprovedAt(a: ApprovalRecord, b: ApprovalRecord): number {
  return a.approvedAt - b.approvedAt || cmp(a.user, b.user) || cmp(a.scope, b.scope);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parse<T>(raw: string | null | undefined): T | null {
  return raw === null || raw === undefined ? null : (JSON.parse(raw) as T);
}

/** The approvals of the Redis store: one hash per user, plus a set of the users that may have any. */
export class RedisApprovals {
  constructor(
    private readonly run: Run,
    private readonly keys: RedisKeys,
  ) {}

  async put(approval: ApprovalRecord, now: number): Promise<void> {
    await this.run((r) =>
      r.mailotpPutApproval(
        this.keys.approvals(approval.user),
        this.keys.approvalUsers(),
        approval.scope,
        JSON.stringify(approval),
        now,
        APPROVAL_GRACE_MS,
        approval.user,
      ),
    );
  }

  async get(user: string, scope: string, now: number): Promise<ApprovalRecord | null> {
    const a = await this.run(async (r) => parse<ApprovalRecord>(await r.hget(this.keys.approvals(user), scope)));
    return a && a.expiresAt > now ? a : null;
  }

  async list(user: string | null, now: number): Promise<ApprovalRecord[]> {
    return this.run(async (r) => {
      const users = user === null ? await r.smembers(this.keys.approvalUsers()) : [user];
      if (users.length === 0) return [];
      const pipe = r.pipeline();
      for (const u of users) pipe.hgetall(this.keys.approvals(u));
      const replies = (await pipe.exec()) ?? [];
      const out: ApprovalRecord[] = [];
      const gone: string[] = [];
      users.forEach((u, i) => {
        const [err, hash] = replies[i] ?? [new Error('missing pipeline reply'), null];
        if (err) throw err;
        const values = Object.values((hash ?? {}) as Record<string, string>);
        if (values.length === 0) gone.push(u);
        for (const raw of values) {
          const a = JSON.parse(raw) as ApprovalRecord;
          if (a.expiresAt > now) out.push(a);
        }
      });
      // The set of users is only a hint; forget users whose hash Redis has expired.
      if (user === null) {
        for (const u of gone) {
          await r.mailotpPruneApprovalUser(this.keys.approvals(u), this.keys.approvalUsers(), u);
        }
      }
      return out.sort(byApprovedAt);
    });
  }

  /** Matches clientIp (where the approved login came from), not scope, so '*'-scoped approvals are found too. */
  async delete(user: string, clientIp?: string): Promise<number> {
    const hash = this.keys.approvals(user);
    const users = this.keys.approvalUsers();
    return this.run(async (r) => {
      if (clientIp !== undefined) {
        return Number(await r.mailotpDeleteApprovalsByIp(hash, users, clientIp, user));
      }
      const replies = await r.multi().hlen(hash).del(hash).srem(users, user).exec();
      const [err, n] = replies?.[0] ?? [new Error('transaction aborted'), 0];
      if (err) throw err;
      return Number(n);
    });
  }
}
