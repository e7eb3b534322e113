import { Command, Option } from 'commander';
import { parseDuration } from '../config/duration.js';
import type { AuditEntry } from '../core/ports/store.js';
import { canonicalUser, configOption, USER_ARG } from './admin-commands.js';
import { CliError, iso, print, withCore } from './context.js';

const DEFAULT_LIMIT = 1000;

/** The fields a table row shows in their own columns; the rest go into the detail column. */
const COLUMNS = new Set(['clientIp', 'protocol', 'reason']);

function row(e: AuditEntry): Record<string, unknown> {
  return { at: iso(e.at), event: e.event, user: e.user ?? null, ...e.fields };
}

function detail(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([k, v]) => !COLUMNS.has(k) && v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}

function table(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return 'no audit events';
  const rows = entries.map((e) => [iso(e.at), e.event, e.user ?? '-', String(e.fields.clientIp ?? '-'), String(e.fields.reason ?? '-'), detail(e.fields)]);
  const head = ['TIME', 'EVENT', 'USER', 'CLIENT IP', 'REASON', 'DETAIL'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

export function auditCommand(): Command {
  return new Command('audit')
    .description('the audit trail kept in the store (audit.retention): logins allowed, held or refused and why, requests, devices, approvals, admin changes')
    .addOption(configOption())
    .option('--user <user>', `only this user's events (${USER_ARG})`)
    .option('--since <duration>', 'only events of the last DURATION, e.g. 1h, 7d', '24h')
    .addOption(new Option('--limit <n>', 'at most this many, the newest').default(String(DEFAULT_LIMIT)))
    .option('--json', 'print one JSON document: {"events":[{"at","event","user",...fields}]}, oldest first', false)
    .action(async (o: { config?: string; user?: string; since: string; limit: string; json: boolean }) => {
      const sinceMs = parseDuration(o.since);
      if (sinceMs === null || sinceMs <= 0) throw new CliError(`--since: expected a duration like "24h", got ${JSON.stringify(o.since)}`);
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1_000_000) throw new CliError(`--limit: expected a whole number from 1 to 1000000, got ${JSON.stringify(o.limit)}`);
      await withCore(o.config, async (core) => {
        const user = o.user === undefined ? undefined : canonicalUser(core, o.user);
        const entries = await core.audit.query({ ...(user !== undefined ? { user } : {}), sinceMs, limit });
        print(o.json, { events: entries.map(row) }, table(entries));
      });
    });
}
