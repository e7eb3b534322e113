import { loadConfig } from '../config/load-config.js';
import type { CoreApi } from '../core/services.js';
import { AuditTee } from '../log/audit-tee.js';
import { createLogger } from '../log/logger.js';

/** --config, or MAILOTP_CONFIG, or a clear error. */
export function configPath(opt: string | undefined): string {
  const file = opt ?? process.env.MAILOTP_CONFIG;
  if (!file) throw new CliError('no config file: pass --config FILE or set MAILOTP_CONFIG');
  return file;
}

export class CliError extends Error {}

/** Builds the core over the store the config names for one admin command, then closes it. */
export async function withCore<T>(configOpt: string | undefined, fn: (core: CoreApi) => Promise<T>): Promise<T> {
  const config = loadConfig(configPath(configOpt));
  // Admin commands log at warn+ only, to stderr, so --json output stays clean; their audit events
  // still reach the store's audit trail through the tee, marked as the CLI's.
  const tee = new AuditTee();
  const logger = createLogger({ level: 'warn', pretty: false, destination: process.stderr, audit: tee }).child({ via: 'cli' });
  // Loaded here, not at the top: the core pulls in the passkey, TOTP and store libraries, which
  // `--help`, `--version`, `check-config` and `doctor` do not need.
  const { openAdminCore } = await import('../admin-core.js');
  const { core, close } = await openAdminCore(config, logger, tee);
  try {
    return await fn(core);
  } finally {
    await close();
  }
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function print(json: boolean, doc: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(doc, null, 2)}\n` : `${text}\n`);
}
