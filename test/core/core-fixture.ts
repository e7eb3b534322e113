import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { ApprovalService, type BindTo } from '../../src/core/approval-service.js';
import { FakeClock } from '../../src/core/clock.js';
import { Cooldowns, type CooldownSettings } from '../../src/core/cooldowns.js';
import { TrustedNetworks } from '../../src/core/trusted-networks.js';
import { UserNames, type UserNameRules } from '../../src/core/user-names.js';
import { DeviceService } from '../../src/core/device-service.js';
import { HeldLogins } from '../../src/core/held-logins.js';
import { LoginAuthorizer, type DaemonOtpSettings } from '../../src/core/login-authorizer.js';
import type { LoginAttempt, VerifiedUpstream, VerifyResult } from '../../src/core/login-types.js';
import { RateLimiter, type RateLimitSettings } from '../../src/core/rate-limiter.js';
import { RequestService } from '../../src/core/request-service.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import type { Notifier } from '../../src/core/ports/notifier.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import type { Store } from '../../src/core/ports/store.js';

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

export interface CoreFixture {
  store: Store;
  clock: FakeClock;
  devices: DeviceService;
  approvals: ApprovalService;
  requests: RequestService;
  authorizer: LoginAuthorizer;
  cooldowns: Cooldowns;
  names: UserNames;
  notifier: RecordingNotifier;
  /** Runs the fake clock's timers until p settles: a hold nobody answers ends after holdTime of fake time, without waiting. */
  timeOut<T>(p: Promise<T>): Promise<T>;
  /** A login attempt whose upstream says `password === 'right'`. */
  attempt(user: string, password: string, clientIp?: string, extra?: Partial<LoginAttempt<TestSession>>): LoginAttempt<TestSession> & { session: TestSession; verifyCalls: () => number };
  close(): Promise<void>;
}

/** The production defaults (15 min, 24 h). */
export const TEST_COOLDOWNS: CooldownSettings = { denyMs: 15 * 60_000, reportMs: 24 * 3_600_000 };

export function coreFixture(
  opts: {
    daemon?: Partial<DaemonOtpSettings>;
    limits?: Partial<RateLimitSettings>;
    bindTo?: BindTo;
    store?: Store;
    notifiers?: Notifier[];
    users?: Partial<UserNameRules>;
    cooldowns?: Partial<CooldownSettings>;
    held?: number;
    trustedNetworks?: string[];
  } = {},
): CoreFixture {
  const store = opts.store ?? new SqliteStore({ path: ':memory:' });
  const clock = new FakeClock(Date.now());
  const logger = silentLogger();
  const notifier = new RecordingNotifier();
  const devices = new DeviceService(store, clock, logger);
  const approvals = new ApprovalService(store, clock, logger, {
    ttlMs: 24 * 3_600_000,
    bindTo: opts.bindTo ?? 'client-ip',
    trustedNetworks: new TrustedNetworks(opts.trustedNetworks ?? []),
  });
  const cooldowns = new Cooldowns(store, clock, { ...TEST_COOLDOWNS, ...opts.cooldowns });
  const names = new UserNames({ caseSensitive: false, stripDomain: false, ...opts.users });
  const requests = new RequestService(store, clock, approvals, [notifier, ...(opts.notifiers ?? [])], logger, { requestTtlMs: 300_000, recheckMs: 50 }, cooldowns, clock);
  const limiter = new RateLimiter(store, clock, approvals, {
    failedLoginsPerUser: 5,
    failedLoginsPerIp: 20,
    failedLoginWindowMs: 900_000,
    pushesPerUserPerHour: 10,
    ...opts.limits,
  });
  const authorizer = new LoginAuthorizer(store, approvals, requests, limiter, logger, {
    enabled: true,
    enforce: 'optional',
    holdTimeMs: 300,
    ...opts.daemon,
  }, names, cooldowns, new HeldLogins(opts.held ?? Infinity));
  return {
    store,
    clock,
    devices,
    approvals,
    requests,
    authorizer,
    cooldowns,
    names,
    notifier,
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
