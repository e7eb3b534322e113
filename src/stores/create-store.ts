import { RedisStore } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from '../core/ports/store.js';

/** The `store` section of the configuration, as far as opening a store needs it. */
export interface StoreSettings {
  driver: 'sqlite' | 'redis';
  path?: string;
  url?: string | undefined;
  keyPrefix?: string;
  sentinels?: string[] | undefined;
  sentinelName?: string;
  waitReplicas?: number | undefined;
  waitTimeout?: number;
}

/** "host:port" or "[v6]:port" (the schema checked the shape). */
function endpoint(text: string): { host: string; port: number } {
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(colon + 1)) };
}

function redisTarget(cfg: StoreSettings): { url: string } | { sentinels: { host: string; port: number }[]; sentinelName: string } {
  if (cfg.sentinels) return { sentinels: cfg.sentinels.map(endpoint), sentinelName: cfg.sentinelName ?? 'mymaster' };
  return { url: cfg.url ?? '' };
}

/** The one place that maps configuration to a backend, so the rest of mailotp only sees Store. */
export function createStore(cfg: StoreSettings, opts: { onError?: (e: Error) => void } = {}): Store {
  switch (cfg.driver) {
    case 'sqlite':
      return new SqliteStore({ path: cfg.path ?? 'data/mailotp.db', onError: opts.onError });
    case 'redis':
      return new RedisStore({
        ...redisTarget(cfg),
        keyPrefix: cfg.keyPrefix,
        // With Sentinel a failover must not lose an acknowledged tap: one replica holds it first.
        waitReplicas: cfg.waitReplicas ?? (cfg.sentinels ? 1 : 0),
        ...(cfg.waitTimeout !== undefined ? { waitTimeoutMs: cfg.waitTimeout } : {}),
        onError: opts.onError,
      });
  }
}
