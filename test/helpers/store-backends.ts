import { after, before } from 'node:test';
import type { Store } from '../../src/core/ports/store.js';
import { RedisStore } from '../../src/stores/redis-store.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { startRedisServer, type RedisServerHandle } from './redis-server.js';

/**
 * The stores a core test runs on: one in-memory SQLite store (serving both "instances"), and two
 * RedisStores on one redis-server of the file's own, each call under a key prefix of its own.
 * Call at the top of a test file: it registers the hooks that start and stop the server.
 */
export function storeBackends(prefix: string): [string, () => Store[]][] {
  let redis: RedisServerHandle;
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis.stop();
  });
  let seq = 0;
  return [
    ['SQLite', () => [new SqliteStore({ path: ':memory:' })]],
    [
      'Redis, two instances',
      () => {
        const keyPrefix = `${prefix}-${process.pid}-${++seq}:`;
        return [new RedisStore({ url: redis.url, keyPrefix }), new RedisStore({ url: redis.url, keyPrefix })];
      },
    ],
  ];
}
