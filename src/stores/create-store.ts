import { RedisStore } from './redis-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';
import type { Config } from '../config/schema.js';

export type StoreConfig =
  | { driver: 'sqlite'; path: string }
  | { driver: 'redis'; url: string; keyPrefix?: string };

/** The `store` section as createStore takes it (main, the admin CLI and doctor open the same store). */
export function storeSettings(store: Config['store']): StoreConfig {
  return store.driver === 'redis' ? { driver: 'redis', url: store.url ?? '', keyPrefix: store.keyPrefix } : { driver: 'sqlite', path: store.path };
}

/** The one place that maps configuration to a backend, so the rest of mailotp only sees Store. */
export function createStore(cfg: StoreConfig, opts: { onError?: (e: Error) => void } = {}): Store {
  switch (cfg.driver) {
    case 'sqlite':
      return new SqliteStore({ path: cfg.path, onError: opts.onError });
    case 'redis':
      return new RedisStore({ url: cfg.url, keyPrefix: cfg.keyPrefix, onError: opts.onError });
  }
}
