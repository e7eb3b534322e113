import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/log/logger.js';
import { CapabilityCache } from '../../src/upstream/capability-cache.js';

/** A cache over a read that answers what `answers` says next (an Error: the upstream is down). */
function cacheOver(answers: (string[] | Error)[], clock: FakeClock) {
  let reads = 0;
  const cache = new CapabilityCache<string>(
    async () => {
      const next = answers[Math.min(reads++, answers.length - 1)]!;
      if (next instanceof Error) throw next;
      return next;
    },
    { ttlMs: 60_000, retryMs: 5_000, fallback: ['FALLBACK'], logger: silentLogger(), readLog: () => [{}, 'read'], failedMessage: 'failed', clock },
  );
  return { cache, reads: () => reads };
}

describe('CapabilityCache on the injected clock', () => {
  it('serves a list for its TTL, then refreshes it in the background while serving the old one', async () => {
    const clock = new FakeClock();
    const { cache, reads } = cacheOver([['A'], ['B']], clock);
    await cache.start();
    clock.advance(59_999);
    assert.deepEqual(await cache.get(), ['A']);
    assert.equal(reads(), 1, 'no read within the TTL');
    clock.advance(1);
    assert.deepEqual(await cache.get(), ['A'], 'the stale list is served while the refresh runs');
    assert.equal(reads(), 2);
    assert.deepEqual(await cache.get(), ['B']);
  });

  it('after a failed read serves the fallback and tries again after retryMs, not before', async () => {
    const clock = new FakeClock();
    const { cache, reads } = cacheOver([new Error('down'), ['A']], clock);
    await cache.start();
    assert.deepEqual(await cache.get(), ['FALLBACK']);
    clock.advance(4_999);
    assert.deepEqual(await cache.get(), ['FALLBACK']);
    assert.equal(reads(), 1);
    clock.advance(1);
    await cache.get();
    assert.equal(reads(), 2);
    assert.deepEqual(await cache.get(), ['A']);
  });
});
