import { loadConfig } from '../config/load-config.js';
import { AuditTee } from '../log/audit-tee.js';
import { createLogger } from '../log/logger.js';
import { startMailotp } from '../main.js';

/**
 * `mailotp start`: runs until SIGTERM/SIGINT (goodbyes to pre-login sessions, drain of the spliced
 * ones, exit 0; the same signal again kills at once); SIGHUP reloads the certificate.
 */
export async function runServer(file: string): Promise<void> {
  const config = loadConfig(file);
  // Its audit events go to the store's audit trail too, once the store is open.
  const auditTee = new AuditTee();
  const logger = createLogger({ level: config.log.level, audit: auditTee });
  const running = await startMailotp(config, { logger, auditTee });
  logger.info({ config: file, listeners: running.listeners, portal: running.portal, metrics: running.metrics }, 'mailotp started');

  const shutdown = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      running.reloadTls();
    } catch (err) {
      logger.error({ err: err instanceof Error ? err.message : String(err) }, 'TLS reload failed; keeping the old certificate');
    }
  });
}
