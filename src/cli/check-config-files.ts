import { readSecretKey } from '../config/secret-key-file.js';
import { existsSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import { checkServiceAccount } from '../push/fcm-service-account.js';
import { readVapidKeys } from '../push/vapid-keys.js';
import type { ConfigProblem } from '../config/load-config.js';
import type { Config } from '../config/schema.js';

function reason(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : err instanceof Error ? err.message : String(err);
}

/**
 * What `check-config` verifies beyond the schema: the files the config names can be read and used,
 * so that a bad path fails here and not at start. Messages never quote file contents (keys).
 */
export function checkConfigFiles(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.tls) {
    const { cert, key } = config.tls;
    let pair: { cert: Buffer; key: Buffer } | null = null;
    try {
      pair = { cert: readFileSync(cert), key: readFileSync(key) };
    } catch (err) {
      problems.push({ path: 'tls', message: `cannot read the certificate or key (${reason(err)})` });
    }
    if (pair) {
      try {
        tls.createSecureContext(pair);
      } catch {
        problems.push({ path: 'tls', message: `${cert} and ${key} are not a matching PEM certificate and key` });
      }
    }
  }
  for (const protocol of ['imap', 'pop3', 'smtp'] as const) {
    const ca = config.upstream[protocol]?.ca;
    if (!ca) continue;
    try {
      tls.createSecureContext({ ca: readFileSync(ca) });
    } catch (err) {
      problems.push({ path: `upstream.${protocol}.ca`, message: `${ca} is not a readable PEM CA file (${reason(err)})` });
    }
  }
  if (config.push.fcm) {
    try {
      checkServiceAccount(config.push.fcm.serviceAccountFile);
    } catch (err) {
      problems.push({ path: 'push.fcm.serviceAccountFile', message: (err as Error).message.replace(/^push\.fcm\.serviceAccountFile: /, '') });
    }
  }
  // A missing key file is fine: the first start creates it.
  const vapidKeyFile = config.push.webpush?.vapidKeyFile;
  if (vapidKeyFile && existsSync(vapidKeyFile)) {
    try {
      readVapidKeys(vapidKeyFile);
    } catch (err) {
      problems.push({ path: 'push.webpush.vapidKeyFile', message: (err as Error).message.replace(/^push\.webpush\.vapidKeyFile: /, '') });
    }
  }
  const secretKeyFile = config.portal.secretKeyFile;
  if (existsSync(secretKeyFile)) {
    try {
      readSecretKey(secretKeyFile);
    } catch (err) {
      problems.push({ path: 'portal.secretKeyFile', message: (err as Error).message.replace(/^portal\.secretKeyFile: /, '') });
    }
  }
  return problems;
}
