import { readFile } from 'node:fs/promises';
import type { ConnectionOptions } from 'node:tls';
import { MailotpError } from '../core/errors.js';
import type { Store } from '../core/ports/store.js';
import { MIN_TLS_VERSION } from '../net/tls-context.js';
import type { RedisTarget } from './redis-store.js';

/** The `store` section of the configuration, as far as opening a store needs it. */
export interface StoreSettings {
  driver: 'sqlite' | 'redis';
  path?: string;
  url?: string | undefined;
  keyPrefix?: string;
  sentinels?: string[] | undefined;
  sentinelName?: string;
  password?: string | undefined;
  username?: string | undefined;
  sentinelPassword?: string | undefined;
  sentinelUsername?: string | undefined;
  tls?: boolean;
  ca?: string | undefined;
  waitReplicas?: number | undefined;
  waitTimeout?: number;
}

/** "host:port" or "[v6]:port" (the schema checked the shape). */
function endpoint(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(colon + 1)) };
}

function redisTarget(cfg: StoreSettings): RedisTarget {
  if (!cfg.sentinels) return { url: cfg.url ?? '' };
  return {
    sentinels: cfg.sentinels.map(endpoint),
    sentinelName: cfg.sentinelName ?? 'mymaster',
    auth: { password: cfg.password, username: cfg.username, sentinelPassword: cfg.sentinelPassword, sentinelUsername: cfg.sentinelUsername },
  };
}

/** The TLS options of a rediss:// url or of `tls: true` with sentinels: TLS 1.2 or later, the private CA if given. */
async function redisTls(cfg: StoreSettings): Promise<ConnectionOptions | undefined> {
  if (!(cfg.sentinels ? cfg.tls : cfg.url?.startsWith('rediss://'))) return undefined;
  let ca: Buffer | undefined;
  if (cfg.ca) {
    try {
      ca = await readFile(cfg.ca);
    } catch (err) {
      throw new MailotpError('MAILOTP_ERR_CONFIG', `store.ca: cannot read ${cfg.ca}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { minVersion: MIN_TLS_VERSION, ...(ca ? { ca } : {}) };
}

/**
 * The one place that maps configuration to a backend, so the rest of mailotp only sees Store.
 * Only the configured backend's module is loaded: an instance on SQLite never holds ioredis, and
 * one on Redis never opens the native SQLite binding.
 */
export async function createStore(cfg: StoreSettings, opts: { onError?: (e: Error) => void } = {}): Promise<Store> {
  switch (cfg.driver) {
    case 'sqlite': {
      const { SqliteStore } = await import('./sqlite-store.js');
      return new SqliteStore({ path: cfg.path ?? 'data/mailotp.db', onError: opts.onError });
    }
    case 'redis': {
      const { RedisStore } = await import('./redis-store.js');
      const tls = await redisTls(cfg);
      return new RedisStore({
        ...redisTarget(cfg),
        ...(tls ? { tls } : {}),
        keyPrefix: cfg.keyPrefix,
        // With Sentinel a failover must not lose an acknowledged tap: one replica holds it first.
        waitReplicas: cfg.waitReplicas ?? (cfg.sentinels ? 1 : 0),
        ...(cfg.waitTimeout !== undefined ? { waitTimeoutMs: cfg.waitTimeout } : {}),
        onError: opts.onError,
      });
    }
  }
}
