import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MailotpError } from '../core/errors.js';
import { configSchema, type Config } from './schema.js';

export interface ConfigProblem {
  /** Dotted key path, e.g. "daemonOtp.approvalTtl" or "listeners.0.port". */
  path: string;
  message: string;
}

export class ConfigError extends MailotpError {
  constructor(readonly problems: ConfigProblem[]) {
    super('MAILOTP_ERR_CONFIG', problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n'));
    this.name = 'ConfigError';
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Validates a parsed document; relative paths are resolved against baseDir. Returns a frozen Config. */
/** A YAML section left with only comments ("push:") parses as null; treat it as absent. */
function dropNullSections(doc: unknown): unknown {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return doc;
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== null));
}

export function parseConfig(doc: unknown, baseDir: string): Config {
  const parsed = configSchema.safeParse(dropNullSections(doc ?? {}));
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    );
  }
  const c = parsed.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  if (c.tls) c.tls = { cert: abs(c.tls.cert), key: abs(c.tls.key) };
  if (c.store.driver === 'sqlite' && c.store.path !== ':memory:') c.store.path = abs(c.store.path);
  if (c.store.ca) c.store.ca = abs(c.store.ca);
  for (const proto of ['imap', 'pop3', 'smtp'] as const) {
    const u = c.upstream[proto];
    if (u?.ca) u.ca = abs(u.ca);
  }
  if (c.push.fcm) c.push.fcm.serviceAccountFile = abs(c.push.fcm.serviceAccountFile);
  c.portal.secretKeyFile = abs(c.portal.secretKeyFile);
  if (c.push.webpush) c.push.webpush.vapidKeyFile = abs(c.push.webpush.vapidKeyFile);
  return deepFreeze(c);
}

/** Reads, parses (YAML or JSON) and validates the config file. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(err as Error).message}` }]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([{ path: '', message: `${file} is not valid YAML: ${(err as Error).message}` }]);
  }
  return parseConfig(doc, dirname(resolve(file)));
}
