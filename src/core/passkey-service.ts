import { randomBytes } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import { KEEP_MS, type MethodProvider } from './second-factor.js';
import { updateRecord } from './value-update.js';
import { hashToken } from './tokens.js';

let library: Promise<typeof import('@simplewebauthn/server')> | undefined;

/**
 * @simplewebauthn/server, loaded on first use: it and its ASN.1 packages take about 0.3 s to load,
 * which every admin CLI call (they build the same core) would otherwise pay. The server awaits it
 * at start, so a broken install shows there and the first passkey page does not wait.
 */
export function loadWebAuthn(): Promise<typeof import('@simplewebauthn/server')> {
  return (library ??= import('@simplewebauthn/server'));
}

/** One registered passkey: what the assertion is checked with, and what the settings page lists. */
export interface Passkey {
  /** The credential id (base64url), as the browser reports it. */
  id: string;
  /** The COSE public key, base64url. */
  publicKey: string;
  /** The authenticator's signature counter last seen (0: it keeps none). */
  counter: number;
  transports?: string[];
  name: string;
  createdAt: number;
  lastUsedAt?: number;
}

/** Where the ceremony runs: the RP ID (a host name, never an IP address) and the page's origin. */
export interface RelyingParty {
  id: string;
  origin: string;
}

export type RegisterResult = 'ok' | 'expired' | 'refused' | 'exists';
export type AuthenticateResult = 'ok' | 'expired' | 'unknown' | 'refused' | 'counter';

interface UserRecord {
  /** The WebAuthn user handle: random, so the authenticator never holds the mail address. */
  handle: string;
  passkeys: Passkey[];
}

interface Challenge {
  challenge: string;
  user: string;
  rp: RelyingParty;
}

/** How long a ceremony may take, from the options to the answer. */
const CHALLENGE_TTL_MS = 5 * 60_000;
const NAME_MAX = 64;

/**
 * Passkeys (WebAuthn) as a second factor: registered on the settings page, asserted on the second
 * step. userVerification is 'preferred': the password was the first factor, so the passkey has to
 * prove possession; requiring a PIN or biometric would refuse plain security keys.
 */
export class PasskeyService implements MethodProvider {
  readonly id = 'passkey' as const;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly audit: Logger,
    private readonly rpName: string,
  ) {}

  private key(user: string): string {
    return `passkeys:${user}`;
  }
  /** A credential belongs to one account only: claimed across instances by the store's atomic set. */
  private ownerKey(credentialId: string): string {
    return `passkey-owner:${hashToken(credentialId)}`;
  }
  /** Bound to the web session (by its id's hash) and to the ceremony: an answer is checked against this session's challenge only. */
  private challengeKey(kind: 'reg' | 'auth', sessionId: string): string {
    return `passkey-challenge:${kind}:${hashToken(sessionId)}`;
  }

  private async record(user: string): Promise<UserRecord | null> {
    const raw = await this.store.getValue(this.key(user), this.clock.now());
    return raw ? (JSON.parse(raw) as UserRecord) : null;
  }

  /** Changes the user's record as it is now (compare-and-set): a concurrent change on any instance is never overwritten. */
  private update(user: string, change: (current: UserRecord | null) => UserRecord | undefined): Promise<UserRecord | undefined> {
    return updateRecord(this.store, this.key(user), KEEP_MS, () => this.clock.now(), change);
  }

  private static fresh(): UserRecord {
    return { handle: randomBytes(32).toString('base64url'), passkeys: [] };
  }

  /** A new record with its handle, unless another request made one first (then that one). */
  private async firstRecord(user: string): Promise<UserRecord> {
    const fresh = PasskeyService.fresh();
    if (await this.store.setValueIfAbsent(this.key(user), JSON.stringify(fresh), KEEP_MS, this.clock.now())) return fresh;
    return (await this.record(user)) ?? fresh;
  }

  /** The user's passkeys, oldest first. */
  async list(user: string): Promise<Passkey[]> {
    return (await this.record(user))?.passkeys ?? [];
  }

  async isSetUp(user: string): Promise<boolean> {
    return (await this.list(user)).length > 0;
  }

  async reset(user: string): Promise<void> {
    const now = this.clock.now();
    for (const p of await this.list(user)) await this.store.deleteValue(this.ownerKey(p.id), now);
    await this.store.deleteValue(this.key(user), now);
  }

  private async remember(kind: 'reg' | 'auth', sessionId: string, c: Challenge): Promise<void> {
    await this.store.setValue(this.challengeKey(kind, sessionId), JSON.stringify(c), CHALLENGE_TTL_MS, this.clock.now());
  }

  /** Single use: taken from the store whatever the answer turns out to be. */
  private async take(kind: 'reg' | 'auth', sessionId: string, user: string, rp: RelyingParty): Promise<Challenge | null> {
    const raw = await this.store.takeValue(this.challengeKey(kind, sessionId), this.clock.now());
    const c = raw ? (JSON.parse(raw) as Challenge) : null;
    return c && c.user === user && c.rp.id === rp.id && c.rp.origin === rp.origin ? c : null;
  }

  /** The options for navigator.credentials.create(); the user's passkeys are excluded (no second copy on one authenticator). */
  async registrationOptions(user: string, sessionId: string, rp: RelyingParty): Promise<PublicKeyCredentialCreationOptionsJSON> {
    // The handle is kept from the first options on, so the passkey registered with it finds it again.
    const record = (await this.record(user)) ?? (await this.firstRecord(user));
    const { generateRegistrationOptions } = await loadWebAuthn();
    const options = await generateRegistrationOptions({
      rpName: this.rpName,
      rpID: rp.id,
      userName: user,
      userID: Buffer.from(record.handle, 'base64url'),
      attestationType: 'none',
      excludeCredentials: record.passkeys.map((p) => ({ id: p.id, ...(p.transports ? { transports: p.transports } : {}) })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      timeout: CHALLENGE_TTL_MS,
    });
    await this.remember('reg', sessionId, { challenge: options.challenge, user, rp });
    return options;
  }

  /** Checks the browser's answer to registrationOptions() and keeps the new passkey under `name`. */
  async register(user: string, sessionId: string, response: RegistrationResponseJSON, name: string, rp: RelyingParty): Promise<RegisterResult> {
    const c = await this.take('reg', sessionId, user, rp);
    if (!c) return this.refuse(user, 'registration', 'expired');
    let verified;
    try {
      const { verifyRegistrationResponse } = await loadWebAuthn();
      verified = await verifyRegistrationResponse({ response, expectedChallenge: c.challenge, expectedOrigin: rp.origin, expectedRPID: rp.id, requireUserVerification: false });
    } catch (err) {
      return this.refuse(user, 'registration', 'refused', err);
    }
    if (!verified.verified) return this.refuse(user, 'registration', 'refused');
    const cred = verified.registrationInfo.credential;
    const now = this.clock.now();
    if (!(await this.store.setValueIfAbsent(this.ownerKey(cred.id), user, KEEP_MS, now))) return this.refuse(user, 'registration', 'exists');
    const passkey: Passkey = {
      id: cred.id,
      publicKey: Buffer.from(cred.publicKey).toString('base64url'),
      counter: cred.counter,
      ...(cred.transports ? { transports: cred.transports } : {}),
      name: cleanName(name),
      createdAt: now,
    };
    await this.update(user, (current) => {
      const record = current ?? PasskeyService.fresh();
      return { ...record, passkeys: [...record.passkeys.filter((p) => p.id !== cred.id), passkey] };
    });
    this.audit.info({ event: 'passkey.registered', user, passkey: passkey.name }, 'passkey registered');
    return 'ok';
  }

  /** The options for navigator.credentials.get(), limited to the user's own passkeys. */
  async authenticationOptions(user: string, sessionId: string, rp: RelyingParty): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const passkeys = await this.list(user);
    const { generateAuthenticationOptions } = await loadWebAuthn();
    const options = await generateAuthenticationOptions({
      rpID: rp.id,
      allowCredentials: passkeys.map((p) => ({ id: p.id, ...(p.transports ? { transports: p.transports } : {}) })),
      userVerification: 'preferred',
      timeout: CHALLENGE_TTL_MS,
    });
    await this.remember('auth', sessionId, { challenge: options.challenge, user, rp });
    return options;
  }

  /** Checks an assertion against the challenge of this session and one of the user's passkeys. */
  async authenticate(user: string, sessionId: string, response: AuthenticationResponseJSON, rp: RelyingParty): Promise<AuthenticateResult> {
    const c = await this.take('auth', sessionId, user, rp);
    if (!c) return this.refuse(user, 'assertion', 'expired');
    const record = await this.record(user);
    const passkey = record?.passkeys.find((p) => p.id === response.id);
    if (!record || !passkey) return this.refuse(user, 'assertion', 'unknown');
    let verified;
    try {
      const { verifyAuthenticationResponse } = await loadWebAuthn();
      verified = await verifyAuthenticationResponse({
        response,
        expectedChallenge: c.challenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        credential: { id: passkey.id, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.counter, ...(passkey.transports ? { transports: passkey.transports } : {}) },
        requireUserVerification: false,
      });
    } catch (err) {
      // The library refuses a counter that did not grow; say so apart: it hints at a cloned authenticator.
      return this.refuse(user, 'assertion', /counter/i.test(String(err)) ? 'counter' : 'refused', err, passkey.name);
    }
    if (!verified.verified) return this.refuse(user, 'assertion', 'refused', undefined, passkey.name);
    const newCounter = verified.authenticationInfo.newCounter;
    const now = this.clock.now();
    // Against the record as it is now: a counter that did not grow past the stored one is refused
    // (a cloned authenticator; of two assertions with the same counter one passes), and a passkey
    // removed meanwhile stays removed (and refuses this sign-in).
    let why: 'unknown' | 'counter' | null = null;
    await this.update(user, (current) => {
      const stored = current?.passkeys.find((p) => p.id === passkey.id);
      why = !current || !stored ? 'unknown' : (newCounter > 0 || stored.counter > 0) && newCounter <= stored.counter ? 'counter' : null;
      if (why || !current) return undefined;
      return { ...current, passkeys: current.passkeys.map((p) => (p.id === passkey.id ? { ...p, counter: newCounter, lastUsedAt: now } : p)) };
    });
    if (why) return this.refuse(user, 'assertion', why, undefined, passkey.name);
    this.audit.info({ event: 'passkey.used', user, passkey: passkey.name }, 'passkey used');
    return 'ok';
  }

  /** Removes one passkey by its credential id; false when the user has no such passkey. */
  async remove(user: string, id: string): Promise<boolean> {
    let passkey: Passkey | undefined;
    await this.update(user, (current) => {
      passkey = current?.passkeys.find((p) => p.id === id);
      return current && passkey ? { ...current, passkeys: current.passkeys.filter((p) => p.id !== id) } : undefined;
    });
    if (!passkey) return false;
    await this.store.deleteValue(this.ownerKey(id), this.clock.now());
    this.audit.warn({ event: 'passkey.removed', user, passkey: passkey.name }, 'passkey removed');
    return true;
  }

  private refuse<R extends RegisterResult | AuthenticateResult>(user: string, ceremony: 'registration' | 'assertion', why: R, err?: unknown, passkey?: string): R {
    const detail = err instanceof Error ? err.message : undefined;
    this.audit.warn({ event: 'passkey.refused', user, ceremony, why, ...(passkey ? { passkey } : {}), ...(detail ? { detail } : {}) }, 'passkey refused');
    return why;
  }
}

/** A name the user typed (or the browser's default): one line, no control characters, not too long. */
function cleanName(typed: string): string {
  const name = typed.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/\s+/g, ' ').trim().slice(0, NAME_MAX);
  return name || 'Passkey';
}
