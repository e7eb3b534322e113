import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import { KEEP_MS } from './second-factor.js';
import { hashToken } from './tokens.js';

/** One remembered browser as the settings page and `user show` list it; `id` is the hash of its cookie. */
export interface RememberedBrowser {
  id: string;
  user: string;
  /** "Chrome", "Firefox", ... from the User-Agent when it was remembered. */
  browser: string;
  /** "Linux", "Android", ... or '' when the User-Agent did not say. */
  os: string;
  /** The address it was remembered from. */
  clientIp: string;
  createdAt: number;
  expiresAt: number;
  /** The last sign-in it skipped the second step of (absent: none yet), and from where. */
  lastUsedAt?: number;
  lastIp?: string;
}

interface StoredBrowser extends Omit<RememberedBrowser, 'id' | 'lastUsedAt' | 'lastIp'> {
  /** The user's browser generation when it was remembered; "revoke all" moves to a new one. */
  gen: string;
}

export interface RememberedBrowserSettings {
  /** How long a remembered browser skips the second step (absolute, from when it was remembered); 0: off. */
  ttlMs: number;
}

/** Listed and revocable one by one; a user with more has the oldest drop off the list (revoke all still ends them). */
const MAX_LISTED = 50;
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

/**
 * "Remember this browser": a random id lives only in the browser's cookie; the store keeps its
 * SHA-256 with who it belongs to, so a cookie of one user never skips another user's step, and
 * deleting the record (on any instance) ends it everywhere at once. Only the second step is skipped:
 * the password is always checked.
 */
export class RememberedBrowsers {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly audit: Logger,
    readonly settings: RememberedBrowserSettings,
  ) {}

  get enabled(): boolean {
    return this.settings.ttlMs > 0;
  }

  private key(id: string): string {
    return `rb:${id}`;
  }

  /** The last use is a key of its own: a late write of it can never bring a revoked record back. */
  private seenKey(id: string): string {
    return `rb-seen:${id}`;
  }

  private listKey(user: string): string {
    return `rb-list:${user}`;
  }

  private genKey(user: string): string {
    return `rb-gen:${user}`;
  }

  private async generation(user: string): Promise<string> {
    return (await this.store.getValue(this.genKey(user), this.clock.now())) ?? '0';
  }

  private async stored(id: string): Promise<StoredBrowser | null> {
    const raw = await this.store.getValue(this.key(id), this.clock.now());
    return raw ? (JSON.parse(raw) as StoredBrowser) : null;
  }

  /** The record behind a cookie value, when it is live and of this user. */
  private async live(user: string, token: string | undefined): Promise<{ id: string; record: StoredBrowser } | null> {
    if (!token || !TOKEN.test(token)) return null;
    const id = hashToken(token);
    const record = await this.stored(id);
    if (!record || record.user !== user || record.gen !== (await this.generation(user))) return null;
    return { id, record };
  }

  /**
   * Remembers this browser for the user after a passed second step; returns the cookie value and
   * when it ends. `previous` (this browser's earlier cookie) is replaced when it was the same user's.
   */
  async remember(user: string, from: { browser: string; os: string; clientIp: string }, previous?: string): Promise<{ token: string; expiresAt: number } | null> {
    if (!this.enabled) return null;
    const now = this.clock.now();
    const old = await this.live(user, previous);
    if (old) await this.drop(old.id);
    const token = randomBytes(32).toString('base64url');
    const id = hashToken(token);
    const record: StoredBrowser = { user, ...from, createdAt: now, expiresAt: now + this.settings.ttlMs, gen: await this.generation(user) };
    await this.store.setValue(this.key(id), JSON.stringify(record), this.settings.ttlMs, now);
    await this.store.pushToList(this.listKey(user), id, MAX_LISTED, this.settings.ttlMs, now);
    this.audit.info({ event: 'browser.remembered', user, browserId: id.slice(0, 12), browser: from.browser, os: from.os, clientIp: from.clientIp }, 'browser remembered');
    return { token, expiresAt: record.expiresAt };
  }

  /** True when the cookie is a live remembered browser of this user: its sign-in skips the second step. */
  async skips(user: string, token: string | undefined, clientIp: string): Promise<boolean> {
    if (!this.enabled) return false;
    const found = await this.live(user, token);
    if (!found) return false;
    const now = this.clock.now();
    const left = found.record.expiresAt - now;
    if (left <= 0) return false;
    await this.store.setValue(this.seenKey(found.id), JSON.stringify({ at: now, ip: clientIp }), left, now);
    this.audit.info({ event: 'browser.skipped-second-step', user, browserId: found.id.slice(0, 12), clientIp }, 'remembered browser skipped the second step');
    return true;
  }

  /** The user's live remembered browsers, newest first. */
  async list(user: string): Promise<RememberedBrowser[]> {
    const now = this.clock.now();
    const gen = await this.generation(user);
    const ids = [...new Set(await this.store.readList(this.listKey(user), now))];
    const found = await Promise.all(
      ids.map(async (id): Promise<RememberedBrowser | null> => {
        const r = await this.stored(id);
        if (!r || r.user !== user || r.gen !== gen) return null;
        const seenRaw = await this.store.getValue(this.seenKey(id), now);
        const seen = seenRaw ? (JSON.parse(seenRaw) as { at: number; ip: string }) : null;
        const { gen: _gen, ...shown } = r;
        return { id, ...shown, ...(seen ? { lastUsedAt: seen.at, lastIp: seen.ip } : {}) };
      }),
    );
    return found.filter((b): b is RememberedBrowser => b !== null).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Forgets one of the user's browsers; false when it is not one of theirs (or already gone). */
  async revoke(user: string, id: string, via: 'portal' | 'cli'): Promise<boolean> {
    if (!/^[0-9a-f]{64}$/.test(id)) return false;
    const r = await this.stored(id);
    if (!r || r.user !== user) return false;
    await this.drop(id);
    this.audit.info({ event: 'browser.revoked', user, browserId: id.slice(0, 12), via }, 'remembered browser revoked');
    return true;
  }

  /** Forgets every browser of the user, listed or not; returns how many were listed. */
  async revokeAll(user: string, via: 'portal' | 'cli'): Promise<number> {
    const listed = await this.list(user);
    const now = this.clock.now();
    // A new generation first: a browser remembered while this runs, or pushed off the list, ends too.
    await this.store.setValue(this.genKey(user), randomBytes(12).toString('base64url'), KEEP_MS, now);
    await Promise.all(listed.map((b) => this.drop(b.id)));
    this.audit.info({ event: 'browser.revoked-all', user, count: listed.length, via }, 'every remembered browser revoked');
    return listed.length;
  }

  private async drop(id: string): Promise<void> {
    const now = this.clock.now();
    await this.store.deleteValue(this.key(id), now);
    await this.store.deleteValue(this.seenKey(id), now);
  }
}
