import { generateSecret, generateURI, verifySync } from 'otplib';
import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import { KEEP_MS, type MethodProvider } from './second-factor.js';
import type { SecretBox } from './secret-box.js';

/** RFC 6238 as every authenticator app does it: SHA-1, 6 digits, 30 s. */
const PERIOD_S = 30;
/** One step either side: a phone clock half a minute off still works. */
const TOLERANCE_S = PERIOD_S;
/** How long a new key waits for its first code. */
const PENDING_TTL_MS = 15 * 60_000;
/** A used time step is remembered until no tolerance window can reach it again. */
const USED_TTL_MS = 4 * PERIOD_S * 1000;
const CODE = /^\d{6}$/;

export type TotpResult = 'ok' | 'wrong' | 'replayed' | 'not-set-up';

/** Authenticator-app keys: set up by proving a first code, checked once per code, encrypted at rest. */
export class TotpService implements MethodProvider {
  readonly id = 'totp' as const;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly audit: Logger,
    private readonly issuer: string,
  ) {}

  private key(user: string): string {
    return `totp:${user}`;
  }
  private pendingKey(user: string): string {
    return `totp-pending:${user}`;
  }

  private async secret(key: string, user: string): Promise<string | null> {
    const sealed = await this.store.getValue(key, this.clock.now());
    return sealed ? this.box.open('totp', user, sealed) : null;
  }

  async isSetUp(user: string): Promise<boolean> {
    return (await this.store.getValue(this.key(user), this.clock.now())) !== null;
  }

  /** A new key waiting for its first code. The key in use (if any) stops working now: a new one replaces it. */
  async begin(user: string): Promise<{ secret: string; uri: string }> {
    const now = this.clock.now();
    const secret = generateSecret();
    await this.store.deleteValue(this.key(user), now);
    await this.store.setValue(this.pendingKey(user), this.box.seal('totp', user, secret), PENDING_TTL_MS, now);
    this.audit.info({ event: 'totp.key-generated', user }, 'new authenticator-app key generated');
    return { secret, uri: this.uri(user, secret) };
  }

  /** The key waiting for its first code, if any. */
  async pending(user: string): Promise<{ secret: string; uri: string } | null> {
    const secret = await this.secret(this.pendingKey(user), user);
    return secret ? { secret, uri: this.uri(user, secret) } : null;
  }

  async cancel(user: string): Promise<void> {
    await this.store.deleteValue(this.pendingKey(user), this.clock.now());
  }

  private uri(user: string, secret: string): string {
    return generateURI({ issuer: this.issuer, label: user, secret });
  }

  /** The first code proves the app holds the key: only then does the key count. */
  async activate(user: string, code: string): Promise<TotpResult> {
    const secret = await this.secret(this.pendingKey(user), user);
    if (!secret) return 'not-set-up';
    const r = await this.check(user, secret, code);
    if (r !== 'ok') return r;
    const now = this.clock.now();
    await this.store.setValue(this.key(user), this.box.seal('totp', user, secret), KEEP_MS, now);
    await this.store.deleteValue(this.pendingKey(user), now);
    this.audit.info({ event: 'totp.activated', user }, 'authenticator app set up');
    return 'ok';
  }

  /** A sign-in code. Each time step counts once per user, on every instance (the store decides). */
  async verify(user: string, code: string): Promise<TotpResult> {
    const secret = await this.secret(this.key(user), user);
    if (!secret) return 'not-set-up';
    return this.check(user, secret, code);
  }

  private async check(user: string, secret: string, typed: string): Promise<TotpResult> {
    const code = typed.replace(/\s+/g, '');
    if (!CODE.test(code)) return 'wrong';
    const now = this.clock.now();
    const epoch = Math.floor(now / 1000);
    const r = verifySync({ secret, token: code, epoch, epochTolerance: TOLERANCE_S, period: PERIOD_S, digits: 6, algorithm: 'sha1' });
    if (!r.valid) return 'wrong';
    // Authelia's replay guard: one record per (user, time step), made atomically; a second use finds it.
    const step = Math.floor(epoch / PERIOD_S) + r.delta;
    const fresh = await this.store.setValueIfAbsent(`totp-used:${user}:${step}`, '1', USED_TTL_MS, now);
    if (!fresh) {
      this.audit.warn({ event: 'totp.replayed', user }, 'authenticator code used a second time refused');
      return 'replayed';
    }
    return 'ok';
  }

  async reset(user: string): Promise<void> {
    const now = this.clock.now();
    await Promise.all([this.store.deleteValue(this.key(user), now), this.store.deleteValue(this.pendingKey(user), now)]);
  }
}
