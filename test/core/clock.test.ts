import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { FakeClock, deadline, linkedAbort, systemScheduler } from '../../src/core/clock.js';

describe('deadline', () => {
  it('aborts with a TimeoutError at its time, not before', () => {
    const clock = new FakeClock();
    const time = deadline(clock, 1_000);
    clock.advance(999);
    assert.equal(time.signal.aborted, false);
    assert.equal(time.expired, false);
    clock.advance(1);
    assert.equal(time.signal.aborted, true);
    assert.equal(time.expired, true);
    assert.equal((time.signal.reason as DOMException).name, 'TimeoutError');
  });

  it('aborts at once with the parent\'s reason when the parent aborts first, and is not expired', () => {
    const clock = new FakeClock();
    const parent = new AbortController();
    const time = deadline(clock, 1_000, parent.signal);
    parent.abort(new Error('client left'));
    assert.equal(time.signal.aborted, true);
    assert.equal(time.expired, false);
    assert.equal((time.signal.reason as Error).message, 'client left');
    // The timer running out later changes nothing.
    clock.advance(2_000);
    assert.equal(time.expired, false);
  });

  it('is aborted from the start, with no timer, when the parent already is', () => {
    const clock = new FakeClock();
    const parent = new AbortController();
    parent.abort(new Error('gone'));
    const time = deadline(clock, 1_000, parent.signal);
    assert.equal(time.signal.aborted, true);
    assert.equal(clock.pending, 0);
  });

  it('leaves neither a timer nor a listener on the parent once cleared', () => {
    const clock = new FakeClock();
    const parent = new AbortController();
    const times = Array.from({ length: 3 }, () => deadline(clock, 1_000, parent.signal));
    assert.equal(clock.pending, 3);
    assert.equal(getEventListeners(parent.signal, 'abort').length, 3);
    for (const time of times) {
      time.clear();
      time.clear();
    }
    assert.equal(clock.pending, 0);
    assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
    parent.abort();
    assert.ok(times.every((t) => !t.signal.aborted));
  });

  it('fires on the real clock even when the garbage collector runs while it waits, with a parent attached', async () => {
    // AbortSignal.any([parent, AbortSignal.timeout(ms)]) loses its weakly held timeout here.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const parent = new AbortController();
    const fired = new Promise<boolean>((resolve) => {
      const time = deadline(systemScheduler, 200, parent.signal);
      time.signal.addEventListener('abort', () => resolve(time.expired), { once: true });
    });
    for (let i = 0; i < 5; i++) {
      gc();
      await sleep(20);
    }
    assert.equal(await Promise.race([fired, sleep(5_000).then(() => 'never fired')]), true);
  });
});

describe('linkedAbort', () => {
  it('follows its parent until cleared, and can be aborted on its own', () => {
    const parent = new AbortController();
    const a = linkedAbort(parent.signal);
    a.abort(new Error('refused'));
    assert.equal(a.signal.aborted, true);
    assert.equal(parent.signal.aborted, false);
    a.clear();

    const b = linkedAbort(parent.signal);
    const c = linkedAbort(parent.signal);
    c.clear();
    parent.abort(new Error('client left'));
    assert.equal((b.signal.reason as Error).message, 'client left');
    assert.equal(c.signal.aborted, false);
  });
});
