import type { Config } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { PROTOCOLS } from '../core/types.js';
import { checkCertificate } from './certificate-check.js';
import type { CheckResult } from './check-result.js';
import { checkListener, checkPortal, checkPush, checkStore, checkUpstream, checkUpstreamLogin, type TestAccount } from './service-checks.js';

/** The groups of checks, in the order they are printed; `--only` picks some of them. */
export const CHECK_GROUPS = ['listeners', 'certificate', 'upstream', 'login', 'store', 'push', 'portal'] as const;
export type CheckGroup = (typeof CHECK_GROUPS)[number];

export interface DoctorOptions {
  clock: Clock;
  /** Address to reach mailotp's own listeners and portal at, instead of what they bind. */
  host?: string;
  /** A real account for the upstream login check; without one that check is skipped. */
  account?: TestAccount;
  only?: readonly CheckGroup[];
  /** Longest any one check may take. */
  timeoutMs: number;
  /** Warn when the certificate expires within this many days. */
  certWarnDays: number;
}

/** A check that did not end in time is a failure, not a hang. */
async function bounded(name: string, timeoutMs: number, run: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<CheckResult[]>((resolve) => {
    timer = setTimeout(() => resolve([{ name, status: 'fail', detail: `no answer within ${timeoutMs} ms` }]), timeoutMs + 1_000);
  });
  try {
    return await Promise.race([run().then((r) => (Array.isArray(r) ? r : [r])), late]);
  } catch (err) {
    return [{ name, status: 'fail', detail: err instanceof Error ? err.message : String(err) }];
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Checks a running set-up end to end from the config it runs with: every listener greets over its
 * TLS mode, the certificate is valid and matches its key, each upstream answers (and takes the test
 * account's password), the store does a round trip, the push channels can be used, the portal answers.
 * The checks run in parallel; the results come in the order of CHECK_GROUPS.
 */
export async function runDoctor(config: Config, opts: DoctorOptions): Promise<CheckResult[]> {
  const wanted = (g: CheckGroup) => !opts.only || opts.only.includes(g);
  const t = opts.timeoutMs;
  const upstreams = PROTOCOLS.flatMap((p) => {
    const endpoint = config.upstream[p];
    return endpoint ? [{ protocol: p, endpoint }] : [];
  });
  const groups: Promise<CheckResult[]>[] = [];
  if (wanted('listeners')) {
    for (const l of config.listeners) groups.push(bounded(`listener ${l.protocol} ${l.port}`, t, () => checkListener(l, config, { host: opts.host, timeoutMs: t })));
  }
  if (wanted('certificate') && config.tls) {
    const files = config.tls;
    groups.push(bounded('certificate', t, () => Promise.resolve(checkCertificate(files, opts.clock.now(), opts.certWarnDays))));
  }
  if (wanted('upstream')) {
    for (const u of upstreams) groups.push(bounded(`upstream ${u.protocol}`, t, () => checkUpstream(u.protocol, u.endpoint, t)));
  }
  if (wanted('login')) {
    const account = opts.account;
    if (!account) {
      groups.push(Promise.resolve([{ name: 'upstream login', status: 'skip', detail: 'no test account given (--user with --password-file or MAILOTP_DOCTOR_PASSWORD)' }]));
    } else {
      for (const u of upstreams) groups.push(bounded(`upstream ${u.protocol} login`, t, () => checkUpstreamLogin(u.protocol, u.endpoint, account, t)));
    }
  }
  if (wanted('store')) groups.push(bounded('store', t, () => checkStore(config, opts.clock.now())));
  if (wanted('push')) groups.push(bounded('push', t, () => checkPush(config, t)));
  if (wanted('portal')) groups.push(bounded('portal', t, () => checkPortal(config, { host: opts.host, timeoutMs: t })));
  return (await Promise.all(groups)).flat();
}
