import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecisionWaits, PER_INSTANCE } from '../../src/portal/pages/decision-waits.js';

describe('the sign-in page waits for the phone: one per session, a cap per instance, all ended at shutdown', () => {
  it('gives a session one wait at a time, and another once it ended', () => {
    const waits = new DecisionWaits();
    const first = waits.begin('s1');
    assert.ok(first);
    assert.equal(waits.begin('s1'), null, 'a second request of the same session is answered at once');
    assert.ok(waits.begin('s2'), 'another session has its own');
    first.end();
    first.end(); // twice frees one place, not two
    const again = waits.begin('s1');
    assert.ok(again);
    assert.equal(waits.begin('s1'), null);
    assert.equal(waits.size, 2);
  });

  it('aborts one wait when its browser leaves, and no other', () => {
    const waits = new DecisionWaits();
    const a = waits.begin('a');
    const b = waits.begin('b');
    assert.ok(a && b);
    a.abort();
    assert.equal(a.signal.aborted, true);
    assert.equal(b.signal.aborted, false);
  });

  it(`holds at most ${PER_INSTANCE} open on one instance`, () => {
    const waits = new DecisionWaits();
    const all = Array.from({ length: PER_INSTANCE }, (_, i) => waits.begin(`s${i}`));
    assert.ok(all.every((w) => w !== null));
    assert.equal(waits.begin('one-more'), null);
    all[0]!.end();
    assert.ok(waits.begin('one-more'));
  });

  it('at shutdown aborts every open wait and begins no new one', () => {
    const waits = new DecisionWaits();
    const open = [waits.begin('x'), waits.begin('y')];
    waits.abortAll();
    assert.deepEqual(open.map((w) => w?.signal.aborted), [true, true]);
    assert.equal(waits.begin('z'), null, 'a request that reaches the route after the hook gets no wait to hang on');
  });
});
