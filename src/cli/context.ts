import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readSecretKey } from '../config/secret-key-file.js';
import { loadConfig } from '../config/load-config.js';
import type { Config } from '../config/schema.js';
import { systemClock } from '../core/clock.js';
import { buildCore, type CoreServices } from '../core/services.js';
import { AuditTee } from '../log/audit-tee.js';
import { createLogger, type Logger } from '../log/logger.js';
import { createStore } from '../stores/create-store.js';

/** --config, or MAILOTP_CONFIG, or a clear error. */
export function configPath(opt: string | undefined): string {
  const file = opt ?? process.env.MAILOTP_CONFIG;
  if (!file) throw new CliError('no config file: pass --config FILE or set MAILOTP_CONFIG');
  return file;
}

export class CliError extends Error {}

/** Opens the store named by the config and builds the core for one admin command, then closes it. */
export async function withCore<T>(configOpt: string | undefined, fn: (core: CoreServices, config: Config, log: Logger) => Promise<T>): Promise<T> {
  const config = loadConfig(configPath(configOpt));
  // Admin commands log at warn+ only, to stderr, so --json output stays clean; their audit events
  // still reach the store's audit trail through the tee, marked as the CLI's.
  const tee = new AuditTee();
  const logger = createLogger({ level: 'warn', pretty: false, destination: process.stderr, audit: tee }).child({ via: 'cli' });
  const store = createStore(config.store);
  try {
    await store.ping();
    // The CLI never seals a secret: without the daemon's key file it must not create one (as root, say).
    const secretKey = existsSync(config.portal.secretKeyFile) ? readSecretKey(config.portal.secretKeyFile) : randomBytes(32);
    const core = buildCore(config, { store, clock: systemClock, logger, notifiers: [], secretKey });
    tee.attach((event, fields) => core.audit.record(event, fields));
    try {
      return await fn(core, config, logger);
    } finally {
      await core.audit.flush();
    }
  } finally {
    await store.close().catch(() => undefined);
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function print(json: boolean, doc: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(doc, null, 2)}\n` : `${text}\n`);
}
