import { randomBytes } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import type { MethodId } from './second-factor.js';
import { hashToken } from './tokens.js';

/** A web sign-in, kept in the store so that every instance sees it and ending it ends it everywhere. */
export interface WebSession {
  user: string;
  /** The user's session generation when this session was made; a newer one ends it (admin reset). */
  gen: string;
  createdAt: number;
  expiresAt: number;
  /** 'second-factor': the password was right and the phone has not approved yet. */
  stage: 'second-factor' | 'signed-in';
  /** The second factor this session passed: 'none' when the user had none at sign-in;
   * 'remembered' when a remembered browser stood in for it. */
  factor: 'none' | MethodId | 'remembered';
  /** The method the second step asks for now (stage 'second-factor'). */
  method?: MethodId;
  /** The login request the phone is asked to approve (stage 'second-factor'). */
  login?: { requestId: string; matchNumber: number; pushCode?: true; wrongCodes?: number };
  /** "Remember this browser" was ticked on a step that the phone ends (stage 'second-factor'). */
  remember?: true;
  /** A QR pairing this session started and still shows. */
  pair?: { linkId: string; secret: string; number: number; expiresAt: number };
}

export interface WebSessionSettings {
  /** How long a signed-in session lasts (absolute, not sliding). */
  ttlMs: number;
  /** How long the second step may take. */
  pendingTtlMs: number;
}

const SID = /^[A-Za-z0-9_-]{43}$/;

/** Web sessions by id. The id lives only in the browser's cookie; the store keys on its hash. */
export class WebSessionService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: WebSessionSettings,
  ) {}

  private key(sid: string): string {
    return `websess:${hashToken(sid)}`;
  }

  private genKey(user: string): string {
    return `websess-gen:${user}`;
  }

  private async generation(user: string): Promise<string> {
    return (await this.store.getValue(this.genKey(user), this.clock.now())) ?? '0';
  }

  /** Starts a session; returns its new id (for the cookie). */
  async create(user: string, stage: WebSession['stage'], factor: WebSession['factor'], extra: Pick<WebSession, 'login' | 'method'> = {}): Promise<{ sid: string; session: WebSession }> {
    const now = this.clock.now();
    const ttl = stage === 'signed-in' ? this.settings.ttlMs : this.settings.pendingTtlMs;
    const session: WebSession = { user, gen: await this.generation(user), createdAt: now, expiresAt: now + ttl, stage, factor, ...extra };
    const sid = randomBytes(32).toString('base64url');
    await this.store.setValue(this.key(sid), JSON.stringify(session), ttl, now);
    if (stage === 'signed-in') this.logger.info({ event: 'web.signed-in', user, factor }, 'web sign-in');
    return { sid, session };
  }

  /** The live session of this id, or null (unknown, expired, signed out, or ended by a reset). */
  async get(sid: string | undefined): Promise<WebSession | null> {
    if (!sid || !SID.test(sid)) return null;
    const raw = await this.store.getValue(this.key(sid), this.clock.now());
    if (!raw) return null;
    const session = JSON.parse(raw) as WebSession;
    if (session.gen !== (await this.generation(session.user))) {
      await this.store.deleteValue(this.key(sid), this.clock.now());
      return null;
    }
    return session;
  }

  /** Saves a changed session under the same id, keeping its expiry. */
  async save(sid: string, session: WebSession): Promise<void> {
    const now = this.clock.now();
    const left = session.expiresAt - now;
    if (left <= 0) return;
    await this.store.setValue(this.key(sid), JSON.stringify(session), left, now);
  }

  /** The second step passed: a new id (so one seen before sign-in is worth nothing) with the full lifetime. */
  async complete(sid: string, session: WebSession, factor: WebSession['factor']): Promise<{ sid: string; session: WebSession }> {
    await this.end(sid);
    return this.create(session.user, 'signed-in', factor);
  }

  /** Sign-out. */
  async end(sid: string): Promise<void> {
    if (SID.test(sid)) await this.store.deleteValue(this.key(sid), this.clock.now());
  }

  /** Ends every session of the user at once (on every instance), except `keep` when given. */
  async endAll(user: string, keep?: { sid: string; session: WebSession }): Promise<void> {
    const now = this.clock.now();
    const gen = randomBytes(12).toString('base64url');
    // The generation outlives every session made before it, so none of them comes back when it expires.
    await this.store.setValue(this.genKey(user), gen, this.settings.ttlMs + 3_600_000, now);
    if (keep) await this.save(keep.sid, { ...keep.session, gen });
    this.logger.info({ event: 'web.sessions-ended', user }, 'web sessions of the user ended');
  }
}
