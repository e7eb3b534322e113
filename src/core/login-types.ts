import type { CooldownKind } from './cooldowns.js';
import type { Protocol } from './types.js';

/** A logged-in upstream session, held while the login waits, then spliced or closed. */
export interface VerifiedUpstream {
  /** Ends the upstream session (politely when it can). Safe to call more than once. */
  close(): void;
}

/** What the upstream server said of the password. */
export type VerifyResult<S extends VerifiedUpstream> =
  | { kind: 'ok'; session: S }
  /** The upstream refused the credentials; `reply` is its own refusal text, when it gave one. */
  | { kind: 'bad-password'; reply?: string }
  /** The upstream could not be reached, refused for a temporary reason, or answered something
   * mailotp cannot interpret. `reply` is the upstream's own temporary refusal (POP3 [IN-USE]) when the
   * adapter should pass it on. */
  | { kind: 'unavailable'; reason: string; reply?: string };

export interface ClientInfo {
  ip: string;
  port: number;
  /** The client's own name when it told one (IMAP ID "name", SMTP EHLO). */
  name?: string;
  /** mailotp's own address and port the client connected to (forwarded as x-connected-ip). */
  localIp?: string;
  localPort?: number;
}

export interface LoginAttempt<S extends VerifiedUpstream> {
  protocol: Protocol;
  user: string;
  password: string;
  clientIp: string;
  clientName?: string;
  /** Checks the password against the upstream server; the adapter binds it to its upstream. */
  verify(): Promise<VerifyResult<S>>;
  /** Called once, when the login starts waiting for a tap on the phone. */
  onHold?(): void;
  /** Aborted when the client goes away; the wait ends with 'aborted'. */
  signal?: AbortSignal;
  /** Requests whose hold already timed out on this connection (newest last): a login matching one
   * that is still pending is answered at once instead of being held again. */
  timedOut?: readonly string[];
}

/** The one answer the core gives a protocol adapter. Each protocol maps every kind to a reply. */
export type LoginResult<S extends VerifiedUpstream> =
  | { kind: 'approved'; session: S; reason: 'disabled' | 'not-required' | 'approval' | 'tap' | 'trusted-network' | 'standing-approval' }
  /** No tap within holdTime; the request stays answerable and a retry may get in. */
  | { kind: 'pending-timeout'; requestId: string }
  /** The phone said no, or it did so lately for this user and address (`cooldown`: no request was opened). */
  | { kind: 'denied'; requestId: string; cooldown?: undefined }
  | { kind: 'denied'; requestId?: undefined; cooldown: CooldownKind; until: number }
  /** `invalidName`: the typed name cannot be an account (see UserNames); the upstream was not asked. */
  | { kind: 'bad-password'; reply?: string; invalidName?: string }
  /** Two-factor is required for this user but no device is bound. */
  | { kind: 'no-device' }
  /** Too many failed logins (per user, per IP), too many pushes for this user, or too many of the
   * user's logins held at once waiting for a tap (held). */
  | { kind: 'rate-limited'; limit: 'user' | 'ip' | 'push' | 'held' }
  /** mailotp cannot decide (store or upstream unreachable): temporary refusal. `reply` as in VerifyResult. */
  | { kind: 'unavailable'; reason: string; reply?: string }
  /** The client went away while waiting. */
  | { kind: 'aborted' };

/** A password check without a mail session (web sign-in): the same limits and counters as a mail login. */
export interface PasswordCheck<S extends VerifiedUpstream> {
  user: string;
  clientIp: string;
  verify(): Promise<VerifyResult<S>>;
}

export type PasswordCheckResult =
  /** `user` is the canonical name: the one every record of the account uses. */
  | { kind: 'ok'; user: string }
  | { kind: 'bad-password' }
  | { kind: 'rate-limited'; limit: 'user' | 'ip' }
  | { kind: 'unavailable'; reason: string };

export type AuthorizeLogin = <S extends VerifiedUpstream>(attempt: LoginAttempt<S>) => Promise<LoginResult<S>>;
