import { randomBytes } from 'node:crypto';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';
import type { BindTo } from '../../src/core/approval-service.js';
import { FakeClock } from '../../src/core/clock.js';
import type { CooldownSettings } from '../../src/core/cooldowns.js';
import type { DaemonOtpSettings } from '../../src/core/login-authorizer.js';
import type { LoginAttempt, VerifiedUpstream, VerifyResult } from '../../src/core/login-types.js';
import type { Notifier } from '../../src/core/ports/notifier.js';
import type { Store } from '../../src/core/ports/store.js';
import type { RateLimitSettings } from '../../src/core/rate-limiter.js';
import { buildCore, type CoreDeps, type CoreServices } from '../../src/core/services.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import type { UserNameRules } from '../../src/core/user-names.js';
import { silentLogger, type Logger } from '../../src/log/logger.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';

/** An upstream session that records whether it was closed. */
export class TestSession implements VerifiedUpstream {
  closed = 0;
  close(): void {
    this.closed++;
  }
}

/** A notifier that keeps what it was asked to send. */
export class RecordingNotifier implements Notifier {
  readonly name = 'recording';
  opened: RequestRecord[] = [];
  settled: RequestRecord[] = [];
  async requestOpened(r: RequestRecord, _d: DeviceRecord): Promise<void> {
    this.opened.push(r);
  }
  async requestSettled(r: RequestRecord, _d: DeviceRecord | null): Promise<void> {
    this.settled.push(r);
  }
}

export interface CoreFixture extends CoreServices {
  clock: FakeClock;
  notifier: RecordingNotifier;
  /** The config the core was built from (the schema's defaults, with the fixture's settings). */
  config: Config;
  /** Runs the fake clock's timers until p settles: a hold nobody answers ends after holdTime of fake time, without waiting. */
  timeOut<T>(p: Promise<T>): Promise<T>;
  /** A login attempt whose upstream says `password === 'right'`. */
  attempt(user: string, password: string, clientIp?: string, extra?: Partial<LoginAttempt<TestSession>>): LoginAttempt<TestSession> & { session: TestSession; verifyCalls: () => number };
  close(): Promise<void>;
}

/** The production defaults (15 min, 24 h). */
export const TEST_COOLDOWNS: CooldownSettings = { denyMs: 15 * 60_000, reportMs: 24 * 3_600_000 };

export interface CoreFixtureOptions {
  daemon?: Partial<DaemonOtpSettings>;
  limits?: Partial<RateLimitSettings>;
  bindTo?: BindTo;
  store?: Store;
  notifiers?: Notifier[];
  users?: Partial<UserNameRules>;
  cooldowns?: Partial<CooldownSettings>;
  /** Logins of one user held at once (limits.maxHeldLoginsPerUser); unlimited unless given. */
  held?: number;
  trustedNetworks?: string[];
  /** A clock to share (with another fixture, or one set to a given time); a new one at now unless given. */
  clock?: FakeClock;
  /** Where the core logs; silent unless given. */
  logger?: Logger;
  /** The request service's recheck and sweep intervals (recheck 50 ms unless given). */
  requestTimings?: CoreDeps['requestTimings'];
}

/**
 * The config the fixture's core is built from: the schema's defaults for a minimal valid file, then
 * the fixture's settings in the config's own terms. Values below the schema's minimums (a 50 ms hold)
 * are set after parsing, on purpose: the core takes whatever numbers it is given.
 */
export function coreConfig(opts: CoreFixtureOptions = {}): Config {
  const base = parseConfig(
    {
      listeners: [{ protocol: 'imap', port: 0, tls: 'none', allowInsecure: true }],
      upstream: { imap: { host: '127.0.0.1', port: 143, tls: 'none' } },
      store: { path: ':memory:' },
      portal: { tls: false },
    },
    '/',
  );
  const d = opts.daemon ?? {};
  const l = opts.limits ?? {};
  return {
    ...base,
    daemonOtp: {
      ...base.daemonOtp,
      enabled: d.enabled ?? true,
      enforce: d.enforce ?? 'optional',
      holdTime: d.holdTimeMs ?? 300,
      holdTimes: d.holdTimesMs,
      bindTo: opts.bindTo ?? 'client-ip',
      requestTtl: 300_000,
      denyCooldown: opts.cooldowns?.denyMs ?? TEST_COOLDOWNS.denyMs,
      reportCooldown: opts.cooldowns?.reportMs ?? TEST_COOLDOWNS.reportMs,
      trustedNetworks: opts.trustedNetworks ?? [],
    },
    limits: {
      ...base.limits,
      failedLoginsPerUser: l.failedLoginsPerUser ?? 5,
      failedLoginsPerIp: l.failedLoginsPerIp ?? 20,
      failedLoginWindow: l.failedLoginWindowMs ?? 900_000,
      pushesPerUserPerHour: l.pushesPerUserPerHour ?? 10,
      maxHeldLoginsPerUser: opts.held ?? Infinity,
    },
    users: { ...base.users, caseSensitive: false, stripDomain: false, ...opts.users },
  };
}

/** The core as production builds it (buildCore), over an in-memory SQLite store and a fake clock that also drives its timers (fx.timeOut). */
export function coreFixture(opts: CoreFixtureOptions = {}): CoreFixture {
  const store = opts.store ?? new SqliteStore({ path: ':memory:' });
  const clock = opts.clock ?? new FakeClock(Date.now());
  const notifier = new RecordingNotifier();
  const config = coreConfig(opts);
  const core = buildCore(config, {
    store,
    clock,
    scheduler: clock,
    logger: opts.logger ?? silentLogger(),
    notifiers: [notifier, ...(opts.notifiers ?? [])],
    secretKey: randomBytes(32),
    requestTimings: { recheckMs: 50, ...opts.requestTimings },
  });
  return {
    ...core,
    clock,
    notifier,
    config,
    timeOut: (p) => runTimersUntil(clock, p),
    attempt(user, password, clientIp = '127.0.0.2', extra = {}) {
      const session = new TestSession();
      let calls = 0;
      return {
        protocol: 'imap',
        user,
        password,
        clientIp,
        session,
        verifyCalls: () => calls,
        async verify(): Promise<VerifyResult<TestSession>> {
          calls++;
          return password === 'right' ? { kind: 'ok', session } : { kind: 'bad-password', reply: '[AUTHENTICATIONFAILED] Authentication failed.' };
        },
        ...extra,
      };
    },
    close: () => store.close(),
  };
}

/** Lets the work already started run: the in-memory SQLite store answers within a few turns of the event loop. */
export async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}

/**
 * Fires the clock's timers one by one, letting the store's work run in between, until p settles.
 * Fails rather than hangs when p still waits with no timer left (a regression, not a slow test).
 */
export async function runTimersUntil<T>(clock: FakeClock, p: Promise<T>): Promise<T> {
  let settled = false;
  const watched = p.finally(() => (settled = true));
  for (let idle = 0; !settled; ) {
    // A few turns of the event loop: the SQLite store answers within them.
    for (let i = 0; i < 5 && !settled; i++) await turn();
    if (settled) break;
    if (clock.runNext()) idle = 0;
    else if (++idle > 200) throw new Error('still waiting, and no timer left to fire');
    else await sleep(1);
  }
  return watched;
}

/** Waits until fn returns a truthy value (polling the store, whose work is real I/O), or fails after timeoutMs. */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** Turns the user's switch on and binds a device; returns its id. */
export async function withDevice(f: CoreFixture, user = 'alice'): Promise<string> {
  await f.store.setDaemonOtp(user, true, f.clock.now());
  const bound = await f.devices.bind(user, 'Phone', false);
  if (bound.status !== 'bound') throw new Error(`${user} already has a device`);
  return bound.device.deviceId;
}
