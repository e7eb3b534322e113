import { createRequire } from 'node:module';
import pino, { type Logger, type LoggerOptions } from 'pino';
import type prettyFactory from 'pino-pretty';

/** pino-pretty, loaded only when a terminal wants it: a daemon logging JSON never holds it. */
function prettyStream(options: prettyFactory.PrettyOptions): prettyFactory.PrettyStream {
  return (createRequire(import.meta.url)('pino-pretty') as typeof prettyFactory)(options);
}

export type { Logger } from 'pino';

/** Keys whose values never reach a log line, at the top of the logged object or one level down. */
export const SECRET_KEYS = ['password', 'pass', 'sentinelPassword', 'token', 'secret', 'authorization', 'pushToken', 'tokenHash', 'webPush'] as const;

/**
 * pino's redaction paths: every secret key at the top level (and deeper under request headers).
 * The same keys one level down under any other key ("*.password") are redacted by
 * `redactNested` below instead of pino's wildcard paths: a wildcard path makes pino run its path
 * parser over every key of every line and every child logger, ~8 KiB of garbage and 5 µs each,
 * a fifth of what a login through mailotp allocated (bench/probes/login-garbage.mjs).
 */
export const REDACT_PATHS = [...SECRET_KEYS, 'req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie'];

const CENSOR = '[redacted]';
const SECRET_KEY_SET: ReadonlySet<string> = new Set(SECRET_KEYS);

/**
 * The logged object (or a child's bindings) with every secret key one level down replaced by the
 * censor. Copy on write: the caller's objects are never changed, and nothing is allocated when
 * nothing is secret. A copy keeps the original's prototype and own properties, so an Error stays
 * an Error for pino's serializer.
 */
export function redactNested<T extends Record<string, unknown>>(obj: T): T {
  let out: T | undefined;
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (value === null || typeof value !== 'object' || Array.isArray(value) || SECRET_KEY_SET.has(key)) continue;
    let copy: Record<string, unknown> | undefined;
    for (const inner of SECRET_KEYS) {
      if (!(inner in value)) continue;
      copy ??= Object.create(Object.getPrototypeOf(value), Object.getOwnPropertyDescriptors(value)) as Record<string, unknown>;
      Object.defineProperty(copy, inner, { value: CENSOR, enumerable: true, writable: true, configurable: true });
    }
    if (copy) (out ??= { ...obj })[key as keyof T] = copy as T[keyof T];
  }
  return out ?? obj;
}

/** The fixed names of audit events (the `event` field of a log line). test/log checks that src uses no other. */
export const AUDIT_EVENTS = [
  'login.approved',
  'login.bad-password',
  'login.pending-timeout',
  'login.denied',
  'login.no-device',
  'login.rate-limited',
  'login.unavailable',
  'login.aborted',
  'request.opened',
  'request.joined',
  'request.pending',
  'request.pushed',
  'request.push-failed',
  'request.approved',
  'request.denied',
  'request.reported',
  'request.settled',
  'request.expired',
  'request.sweep-failed',
  'approval.created',
  'approval.revoked',
  'device.bound',
  'device.removed',
  'device.push-token',
  'device.push-subscription',
  'device.auth-failed',
  'device.auth-unavailable',
  'users.merged',
  'users.merge-failed',
  'connection.refused',
  // web sign-in, portal settings and pairing
  'request.wrong-number',
  'request.withdrawn',
  'password.ok',
  'password.bad-password',
  'password.rate-limited',
  'password.unavailable',
  'web.signed-in',
  'web.signed-out',
  'web.sessions-ended',
  'web.csrf-refused',
  'user.daemon-otp',
  'pairing.link-started',
  'pairing.bound',
  'pairing.wrong-number',
  'pairing.code-unknown',
  'device.removed-push-failed',
  // second factors and forward auth
  'recovery.generated',
  'recovery.used',
  'user.default-method',
  'user.method-reset',
  'totp.key-generated',
  'totp.activated',
  'totp.replayed',
  'web.return-refused',
  'web.push-code-wrong',
  'web.second-factor-refused',
  // audit trail and exemptions
  'login.held',
  'approval.granted',
  // passkeys
  'passkey.registered',
  'passkey.removed',
  'passkey.used',
  'passkey.refused',
  // remembered browsers, and the bound device told of a used recovery code
  'browser.remembered',
  'browser.skipped-second-step',
  'browser.revoked',
  'browser.revoked-all',
  'recovery.notice-failed',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export interface LoggerSettings {
  level: string;
  /** Pretty output for humans; defaults to whether stdout is a TTY. */
  pretty?: boolean;
  /** Where lines go instead of stdout (tests). */
  destination?: NodeJS.WritableStream;
  /** Also receives every line from `info` up, whatever `level` says, so that the audit trail does not
   * depend on how verbose the log is (an AuditTee). */
  audit?: { write(line: string): void };
}

export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level,
    base: { name: 'mailotp' },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: { log: redactNested },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return redactChildBindings(rootLogger(options, settings));
}

function rootLogger(options: LoggerOptions, settings: LoggerSettings): Logger {
  if (settings.audit) return teeLogger(options, settings, settings.audit);
  if (settings.destination) return pino(options, settings.destination);
  const pretty = settings.pretty ?? process.stdout.isTTY === true;
  if (pretty) return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(options);
}

/**
 * A child's bindings pass through redactNested as log objects do (pino applies formatters.bindings
 * to the root's own bindings only). Children are made with Object.create(parent), so every
 * descendant inherits this child().
 */
function redactChildBindings(logger: Logger): Logger {
  const pinoChild = logger.child;
  logger.child = function child<L extends string = never>(this: Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions<L>): Logger<L> {
    return Reflect.apply(pinoChild, this, [redactNested(bindings), options]) as Logger<L>;
  };
  return logger;
}

/** One serialisation, two streams: the log at its level, the audit tee from info up. */
function teeLogger(options: LoggerOptions, settings: LoggerSettings, audit: { write(line: string): void }): Logger {
  const values = pino.levels.values;
  const streams: pino.StreamEntry[] = [{ level: 'info', stream: audit }];
  if (settings.level !== 'silent') {
    const pretty = settings.pretty ?? process.stdout.isTTY === true;
    // pino-pretty as a stream in this thread: a transport (worker thread) cannot share a multistream.
    const out = settings.destination ?? (pretty ? prettyStream({ colorize: true }) : pino.destination(1));
    streams.push({ level: settings.level as pino.Level, stream: out });
  }
  const wanted = values[settings.level] ?? Infinity;
  const level = wanted < (values.info ?? 30) ? settings.level : 'info';
  return pino({ ...options, level }, pino.multistream(streams));
}

/** A logger that drops everything (tests, CLI). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
