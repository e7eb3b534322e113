import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readSecretKey } from './config/secret-key-file.js';
import type { Config } from './config/schema.js';
import { systemClock } from './core/clock.js';
import { buildCore, type CoreServices } from './core/services.js';
import type { AuditTee } from './log/audit-tee.js';
import type { Logger } from './log/logger.js';
import { createStore } from './stores/create-store.js';

/**
 * The admin commands' wiring, as main.ts is the server's (kept apart so that a command loads no
 * listener, portal or push code): the core over the store the config names, with no notifiers; the
 * logger's audit events reach the stored trail through `tee`. `close()` writes what the trail still
 * holds and closes the store.
 */
export async function openAdminCore(config: Config, logger: Logger, tee: AuditTee): Promise<{ core: CoreServices; close(): Promise<void> }> {
  const store = await createStore(config.store);
  try {
    await store.ping();
    // The CLI never seals a secret: without the daemon's key file it must not create one (as root, say).
    const secretKey = existsSync(config.portal.secretKeyFile) ? readSecretKey(config.portal.secretKeyFile) : randomBytes(32);
    const core = buildCore(config, { store, clock: systemClock, logger, notifiers: [], secretKey });
    tee.attach((event, fields) => core.audit.record(event, fields));
    return {
      core,
      async close() {
        try {
          await core.audit.flush();
        } finally {
          await store.close().catch(() => undefined);
        }
      },
    };
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
}
