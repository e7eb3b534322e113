import { RedisStore } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export type StoreConfig =
  | { driver: 'sqlite'; path: string }
  | { driver: 'redis'; url: string; keyPrefix?: string };

/** The one place that maps configuration to a backend, so the rest of mailotp only sees Store. */
export function createStore(cfg: StoreConfig, opts: { onError?: (e: Error) => void } = {}): Store {
  switch (cfg.driver) {
    case 'sqlite':
      return new SqliteStore({ path: cfg.path, onError: opts.onError });
    case 'redis':
      return new RedisStore({ url: cfg.url, keyPrefix: cfg.keyPrefix, onError: opts.onError });
  }
}
