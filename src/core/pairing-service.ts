import { createCipheriv, createDecipheriv, createHash, randomBytes, randomInt } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { Notifier } from './ports/notifier.js';
import type { Store } from './ports/store.js';
import { deadline, systemScheduler, type Clock } from './clock.js';
import type { DeviceService } from './device-service.js';
import { numberChoices } from './request-service.js';
import type { DeviceRecord } from './types.js';

/** Pairing codes, links and their answers are single-use and live this long. */
export const PAIRING_TTL_MS = 10 * 60_000;
/** Wrong device verification codes one user may type per PAIRING_TTL_MS. */
const CODE_GUESSES = 10;
const CODE_DIGITS = 9;
/** New codes per client address per window: an unpaired phone needs one every few minutes at most. */
const CODES_PER_IP = 30;
const CODE_WINDOW_MS = 10 * 60_000;
const DEFAULT_DEVICE_NAME = 'Phone';
/** How often a waiting desktop page's held request re-reads the link state (a lost event costs this much). */
const LINK_RECHECK_MS = 2_000;
const MAX_NAME = 64;

export type Bound = { token: string; deviceId: string; user: string };

export type ClaimStatus = { status: 'waiting'; expiresAt: number } | ({ status: 'bound' } & Bound) | { status: 'not-found' };
export type CodeBindResult = { status: 'bound'; device: DeviceRecord } | { status: 'not-found' } | { status: 'exists' } | { status: 'rate-limited' };
export type LinkAnswer = ({ status: 'bound' } & Bound) | { status: 'wrong-number' } | { status: 'not-found' } | { status: 'exists' };
/** What the desktop page that started a link sees. */
export type LinkState = 'waiting' | 'bound' | 'wrong-number' | 'exists' | 'expired';

/** What the store keeps under pair-code:<code> until the desktop types the code. */
interface CodeRecord {
  claimId: string;
  /** The key the token is sealed with for the phone: derived from its claim, gone once used. */
  sealKey: string;
  name: string;
  expiresAt: number;
}

type ClaimRecord = { status: 'waiting'; expiresAt: number } | { status: 'bound'; sealed: string; deviceId: string; user: string };

interface LinkRecord {
  user: string;
  linkId: string;
  choices: number[];
  match: number;
  expiresAt: number;
}

const sha = (label: string, s: string): Buffer => createHash('sha256').update(`mailotp-pair-${label}|`).update(s).digest();

/**
 * Binding a phone from the portal, both ways: the phone shows a code that the signed-in user types
 * on the desktop, or the desktop shows a QR link and one number that the phone must pick among three.
 * Everything lives in the store's short-lived values, so another instance can finish what one started.
 * Device tokens handed to a waiting phone are sealed with a key only its claim secret yields.
 */
export class PairingService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly devices: DeviceService,
    private readonly notifiers: readonly Notifier[],
    private readonly logger: Logger,
  ) {}

  /** Counts one code request from clientIp (in the store, across instances); false once past the limit. */
  async mayCreateCode(clientIp: string): Promise<boolean> {
    return (await this.store.hit(`pair-code-ip:${clientIp}`, CODE_WINDOW_MS, this.clock.now())) <= CODES_PER_IP;
  }

  /** The phone asks for a code to show. */
  async createCode(name?: string): Promise<{ code: string; claim: string; expiresAt: number }> {
    const now = this.clock.now();
    const claim = randomBytes(32).toString('base64url');
    const claimId = sha('claim', claim).toString('hex');
    const expiresAt = now + PAIRING_TTL_MS;
    const record: CodeRecord = { claimId, sealKey: sha('seal', claim).toString('hex'), name: cleanName(name), expiresAt };
    for (;;) {
      const code = String(randomInt(0, 10 ** CODE_DIGITS)).padStart(CODE_DIGITS, '0');
      if (await this.store.setValueIfAbsent(`pair-code:${code}`, JSON.stringify(record), PAIRING_TTL_MS, now)) {
        await this.store.setValue(`pair-claim:${claimId}`, JSON.stringify({ status: 'waiting', expiresAt } satisfies ClaimRecord), PAIRING_TTL_MS, now);
        return { code, claim, expiresAt };
      }
    }
  }

  /** The phone polls its claim; the token comes out exactly once. */
  async claimStatus(claim: string): Promise<ClaimStatus> {
    const key = `pair-claim:${sha('claim', claim).toString('hex')}`;
    const now = this.clock.now();
    const raw = await this.store.getValue(key, now);
    if (!raw) return { status: 'not-found' };
    const rec = JSON.parse(raw) as ClaimRecord;
    if (rec.status === 'waiting') return rec;
    // Taken, not read: of two pollers only one gets the token.
    const taken = await this.store.takeValue(key, now);
    if (!taken) return { status: 'not-found' };
    const bound = JSON.parse(taken) as Extract<ClaimRecord, { status: 'bound' }>;
    return { status: 'bound', token: unseal(bound.sealed, sha('seal', claim)), deviceId: bound.deviceId, user: bound.user };
  }

  /** The signed-in user typed the code their phone shows. */
  async bindByCode(user: string, typed: string): Promise<CodeBindResult> {
    const now = this.clock.now();
    const guessKey = `pair-code-guess:${user}`;
    if ((await this.store.count(guessKey, PAIRING_TTL_MS, now)) >= CODE_GUESSES) return { status: 'rate-limited' };
    const code = typed.replace(/[\s-]/g, '');
    if (await this.store.getDeviceByUser(user)) return { status: 'exists' };
    const raw = /^\d{9}$/.test(code) ? await this.store.takeValue(`pair-code:${code}`, now) : null;
    if (!raw) {
      await this.store.hit(guessKey, PAIRING_TTL_MS, now);
      this.logger.info({ event: 'pairing.code-unknown', user }, 'unknown device verification code');
      return { status: 'not-found' };
    }
    const rec = JSON.parse(raw) as CodeRecord;
    const bound = await this.devices.bind(user, rec.name, false);
    if (bound.status === 'exists') return { status: 'exists' };
    const claim: ClaimRecord = { status: 'bound', sealed: seal(bound.token, Buffer.from(rec.sealKey, 'hex')), deviceId: bound.device.deviceId, user };
    await this.store.setValue(`pair-claim:${rec.claimId}`, JSON.stringify(claim), Math.max(1, rec.expiresAt - now), now);
    this.logger.info({ event: 'pairing.bound', via: 'code', user, deviceId: bound.device.deviceId }, 'phone bound by code');
    return { status: 'bound', device: bound.device };
  }

  /** The desktop starts a QR pairing: the secret goes in the link, the number stays on the page. */
  async startLink(user: string): Promise<{ secret: string; linkId: string; number: number; expiresAt: number }> {
    const now = this.clock.now();
    const secret = randomBytes(32).toString('base64url');
    const linkId = randomBytes(16).toString('base64url');
    const { choices, match } = numberChoices();
    const expiresAt = now + PAIRING_TTL_MS;
    const rec: LinkRecord = { user, linkId, choices, match, expiresAt };
    await this.store.setValue(this.linkKey(secret), JSON.stringify(rec), PAIRING_TTL_MS, now);
    await this.setLinkState(linkId, 'waiting', expiresAt);
    this.logger.info({ event: 'pairing.link-started', user }, 'QR pairing started');
    return { secret, linkId, number: match, expiresAt };
  }

  /** What the phone that opened the link shows: whose account, and three numbers. */
  async linkChoices(secret: string): Promise<{ user: string; choices: number[]; expiresAt: number } | null> {
    const raw = await this.store.getValue(this.linkKey(secret), this.clock.now());
    if (!raw) return null;
    const rec = JSON.parse(raw) as LinkRecord;
    return { user: rec.user, choices: rec.choices, expiresAt: rec.expiresAt };
  }

  /** The phone picked a number. Any answer uses the link up; a wrong one voids the pairing. */
  async answerLink(secret: string, number: number, name?: string): Promise<LinkAnswer> {
    const raw = await this.store.takeValue(this.linkKey(secret), this.clock.now());
    if (!raw) return { status: 'not-found' };
    const rec = JSON.parse(raw) as LinkRecord;
    if (number !== rec.match) {
      await this.setLinkState(rec.linkId, 'wrong-number', rec.expiresAt);
      this.logger.warn({ event: 'pairing.wrong-number', user: rec.user }, 'QR pairing voided: wrong number picked');
      return { status: 'wrong-number' };
    }
    const bound = await this.devices.bind(rec.user, cleanName(name), false);
    if (bound.status === 'exists') {
      await this.setLinkState(rec.linkId, 'exists', rec.expiresAt);
      return { status: 'exists' };
    }
    await this.setLinkState(rec.linkId, 'bound', rec.expiresAt);
    this.logger.info({ event: 'pairing.bound', via: 'link', user: rec.user, deviceId: bound.device.deviceId }, 'phone bound by QR link');
    return { status: 'bound', token: bound.token, deviceId: bound.device.deviceId, user: rec.user };
  }

  /** How the QR pairing the desktop started stands. */
  async linkState(linkId: string): Promise<LinkState> {
    const raw = await this.store.getValue(`pair-link-state:${linkId}`, this.clock.now());
    return raw ? (raw as LinkState) : 'expired';
  }

  /**
   * Resolves when the QR pairing is no longer waiting (the phone answered, on any instance: the
   * store's pub/sub carries it), after holdMs, or when the signal aborts; the caller reads the
   * state again. The state is re-read now and then too, in case an event was lost in a reconnect.
   */
  waitWhileWaiting(linkId: string, holdMs: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        hold.clear();
        recheck.clear();
        unsubscribe();
        resolve();
      };
      const unsubscribe = this.store.subscribe((event) => {
        if (event.type === 'pairing.link' && event.linkId === linkId) finish();
      });
      const check = () => {
        this.linkState(linkId).then(
          (state) => state !== 'waiting' && finish(),
          () => undefined, // the store is down: the hold's end answers, and the page asks again
        );
      };
      // The hold ends at holdMs or with the signal (the browser left, or shutdown).
      const hold = deadline(systemScheduler, holdMs, signal);
      const recheck = systemScheduler.setInterval(check, LINK_RECHECK_MS);
      if (hold.signal.aborted) finish();
      else {
        hold.signal.addEventListener('abort', finish, { once: true });
        check();
      }
    });
  }

  /** Gives up a QR pairing the desktop started (the page starts a new one or leaves). */
  async cancelLink(secret: string): Promise<void> {
    await this.store.deleteValue(this.linkKey(secret), this.clock.now());
  }

  /** Clears the user's device and tells the old device, where a notifier can reach it. */
  async clear(user: string): Promise<DeviceRecord | null> {
    const removed = await this.devices.remove(user);
    if (!removed) return null;
    for (const n of this.notifiers) {
      if (!n.deviceRemoved) continue;
      n.deviceRemoved(removed).catch((err: unknown) =>
        this.logger.warn({ event: 'device.removed-push-failed', user, via: n.name, err: String(err) }, 'could not tell the old device'),
      );
    }
    return removed;
  }

  private linkKey(secret: string): string {
    return `pair-link:${sha('link', secret).toString('hex')}`;
  }

  private async setLinkState(linkId: string, state: LinkState, expiresAt: number): Promise<void> {
    const now = this.clock.now();
    await this.store.setValue(`pair-link-state:${linkId}`, state, Math.max(1, expiresAt - now), now);
    // The desktop page waiting for the answer may be held on another instance.
    if (state !== 'waiting') await this.store.publish({ type: 'pairing.link', linkId }).catch(() => undefined);
  }
}

/** A device name as the user gave it: printable, trimmed, short; a default when none. */
function cleanName(name: string | undefined): string {
  const clean = (name ?? '').replace(/[\p{C}]/gu, '').trim().slice(0, MAX_NAME);
  return clean || DEFAULT_DEVICE_NAME;
}

function seal(token: string, key: Buffer): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([c.update(token, 'utf8'), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64url');
}

function unseal(sealed: string, key: Buffer): string {
  const buf = Buffer.from(sealed, 'base64url');
  const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
  d.setAuthTag(buf.subarray(12, 28));
  return Buffer.concat([d.update(buf.subarray(28)), d.final()]).toString('utf8');
}
