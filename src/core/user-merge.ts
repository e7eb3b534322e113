import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import type { UserNames } from './user-names.js';

export interface MergedSpelling {
  from: string;
  to: string;
  /** The canonical name's daemon-OTP switch was turned on because this spelling had it on. */
  daemonOtpOn: boolean;
  /** moved: the device now answers for `to`; dropped: `to` had its own, this one was removed. */
  device: 'moved' | 'dropped' | 'none';
  droppedDeviceId?: string;
  approvals: number;
}

export interface MergeReport {
  merged: MergedSpelling[];
  /** Names no login can use any more (empty, control characters, too long): listed, left alone. */
  unusable: string[];
}

/**
 * Records written before names were canonicalised (or under other `users` settings) are moved to
 * the canonical name at start-up, so that none becomes silently unreachable, which for a switch or
 * a device would mean a login without two-factor. Merging fails closed: a switch that is on under
 * any spelling stays on; when both spellings have a device the canonical one's is kept (it is the
 * one every lookup used) and the other is removed and logged; approvals keep the later expiry.
 * Safe to run again (and on several instances at once): each step is idempotent.
 */
export async function mergeSpellings(store: Store, names: UserNames, clock: Clock, logger: Logger): Promise<MergeReport> {
  const report: MergeReport = { merged: [], unusable: [] };
  for (const from of await store.listUserNames()) {
    const c = names.canonical(from);
    if (!c.ok) {
      report.unusable.push(from);
      logger.warn({ event: 'users.merge-failed', user: from, why: c.why }, `records of ${JSON.stringify(from)} cannot be reached by any login (${c.why}); remove them with the CLI`);
      continue;
    }
    const to = c.name;
    if (to === from) continue;
    const merged = await mergeOne(store, clock, from, to);
    report.merged.push(merged);
    logger.warn({ event: 'users.merged', ...merged }, `records of ${JSON.stringify(from)} merged into ${JSON.stringify(to)} (users settings)`);
  }
  return report;
}

async function mergeOne(store: Store, clock: Clock, from: string, to: string): Promise<MergedSpelling> {
  const now = clock.now();
  const out: MergedSpelling = { from, to, daemonOtpOn: false, device: 'none', approvals: 0 };

  const [fromRec, toRec] = await Promise.all([store.getUser(from), store.getUser(to)]);
  if (fromRec) {
    if (fromRec.daemonOtp && !toRec?.daemonOtp) {
      await store.setDaemonOtp(to, true, now);
      out.daemonOtpOn = true;
    }
    await store.deleteUser(from);
  }

  const moved = await store.moveDevice(from, to);
  if (moved === 'moved') out.device = 'moved';
  else if (moved === 'exists') {
    const dropped = await store.removeDevice(from);
    if (dropped) {
      out.device = 'dropped';
      out.droppedDeviceId = dropped.deviceId;
    }
  }

  for (const a of await store.listApprovals(from, now)) {
    const existing = await store.getApproval(to, a.scope, now);
    if (!existing || existing.expiresAt < a.expiresAt) {
      await store.putApproval({ ...a, user: to }, now);
      out.approvals++;
    }
  }
  await store.deleteApprovals(from);
  return out;
}
