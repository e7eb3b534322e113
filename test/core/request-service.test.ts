import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { systemClock } from '../../src/core/clock.js';
import { RequestService } from '../../src/core/request-service.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { PushTokenRejectedError, type Notifier } from '../../src/core/ports/notifier.js';
import { coreFixture, eventually, turns, withDevice, type CoreFixture } from './core-fixture.js';

let fx: CoreFixture | null = null;
afterEach(async () => {
  await fx?.close();
  fx = null;
});

/** Never answers: what a push service that hangs looks like to the core. */
class HangingNotifier implements Notifier {
  readonly name = 'hanging';
  calls = 0;
  requestOpened(): Promise<void> {
    this.calls++;
    return new Promise(() => undefined);
  }
  requestSettled(): Promise<void> {
    this.calls++;
    return new Promise(() => undefined);
  }
}

/** Throws before returning a promise, the rudest a notifier can be. */
class ThrowingNotifier implements Notifier {
  readonly name = 'throwing';
  calls = 0;
  requestOpened(): Promise<void> {
    this.calls++;
    throw new Error('notifier bug');
  }
  requestSettled(): Promise<void> {
    this.calls++;
    throw new Error('notifier bug');
  }
}

class RejectingNotifier implements Notifier {
  readonly name = 'rejecting';
  async requestOpened(): Promise<void> {
    throw new Error('push service down');
  }
  async requestSettled(): Promise<void> {
    throw new Error('push service down');
  }
}

describe('RequestService and slow or failing notifiers', () => {
  it('a login is held no longer than holdTime and still approved by a tap', async () => {
    const hanging = new HangingNotifier();
    const throwing = new ThrowingNotifier();
    fx = coreFixture({ daemon: { holdTimeMs: 5_000 }, notifiers: [hanging, throwing, new RejectingNotifier()] });
    const deviceId = await withDevice(fx);
    const login = fx.authorizer.authorize(fx.attempt('alice', 'right'));
    const req = await eventually(async () => (await fx!.requests.listPending(deviceId))[0]);
    const tapped = Date.now();
    assert.equal((await fx.requests.decide(deviceId, req.id, 'approve')).status, 'approved');
    const r = await login;
    assert.equal(r.kind, 'approved');
    assert.ok(Date.now() - tapped < 1_000, 'released by the tap, not held by the notifiers');
    await eventually(async () => hanging.calls === 2 && throwing.calls === 2);
  });

  it('a login nobody answers times out after holdTime, not later, and is not let in', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 200 }, notifiers: [new HangingNotifier(), new ThrowingNotifier()] });
    const deviceId = await withDevice(fx);
    let held = false;
    let answered = false;
    const a = fx.attempt('alice', 'right', '127.0.0.2', { onHold: () => (held = true) });
    const login = fx.authorizer.authorize(a).finally(() => (answered = true));
    await eventually(async () => held);
    fx.clock.advance(199);
    await turns();
    assert.equal(answered, false, 'still held 1 ms before holdTime');
    fx.clock.advance(1);
    const r = await login;
    assert.equal(r.kind, 'pending-timeout');
    assert.equal(a.session.closed, 1);
    // And the request stays answerable through the device API's path.
    const [req] = await fx.requests.listPending(deviceId);
    assert.ok(req);
    assert.equal((await fx.requests.decide(deviceId, req.id, 'deny')).status, 'denied');
  });
});

describe('RequestService expiry sweep', () => {
  it('settles a request that expired unanswered exactly once, to every notifier', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 50 } });
    const deviceId = await withDevice(fx);
    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')))).kind, 'pending-timeout');
    const [req] = await fx.requests.listPending(deviceId);
    assert.ok(req);
    assert.equal(await fx.requests.sweepExpired(), 0, 'not before it expires');
    fx.clock.advance(300_000);
    const swept = await Promise.all([fx.requests.sweepExpired(), fx.requests.sweepExpired()]);
    assert.equal(swept[0] + swept[1], 1);
    await eventually(async () => fx!.notifier.settled.length === 1);
    assert.equal(fx.notifier.settled[0]?.id, req.id);
    assert.equal(fx.notifier.settled[0]?.status, 'expired');
    const { events } = await fx.requests.eventsSince(deviceId, 0);
    assert.deepEqual(events.map((e) => e.type), ['request.opened', 'request.expired']);
    assert.deepEqual((await fx.requests.decide(deviceId, req.id, 'approve')).status, 'not-found');
  });

  it('ends a held login as soon as its request expires', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 10_000 } });
    const deviceId = await withDevice(fx);
    const first = fx.authorizer.authorize(fx.attempt('alice', 'right'));
    await eventually(async () => (await fx!.requests.listPending(deviceId))[0]);
    fx.clock.advance(300_000);
    const started = Date.now();
    await fx.requests.sweepExpired();
    assert.equal((await first).kind, 'pending-timeout');
    assert.ok(Date.now() - started < 1_000);
  });

  it('runs on an interval while started, from one owner, and stops when told', async () => {
    fx = coreFixture({ daemon: { holdTimeMs: 50 } });
    const deviceId = await withDevice(fx);
    await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right')));
    assert.equal(fx.clock.pending, 0);
    const stop = fx.requests.startExpirySweeper();
    assert.equal(fx.clock.pending, 1, 'one sweep timer');
    // One owner (main.ts) starts it: a second start is a wiring mistake, not a second sweep.
    assert.throws(() => fx!.requests.startExpirySweeper(), /already running/);
    assert.equal(fx.clock.pending, 1, 'still one sweep timer');
    fx.clock.advance(300_000);
    // The default interval is 1 s: every second of fake time the sweep looks again.
    await eventually(async () => {
      fx!.clock.advance(1_000);
      return fx!.notifier.settled.length === 1;
    });
    stop();
    assert.equal(fx.clock.pending, 0, 'stopped when told');
    assert.deepEqual(await fx.requests.listPending(deviceId), []);
    // A stopped sweep can be started again (a second start after a stop is no mistake).
    await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '10.0.0.9')));
    fx.clock.advance(300_000);
    const again = fx.requests.startExpirySweeper();
    await eventually(async () => {
      fx!.clock.advance(1_000);
      return fx!.notifier.settled.length === 2;
    });
    again();
  });
});

describe('RequestService and rejected push tokens', () => {
  class TokenRejector implements Notifier {
    readonly name = 'fcm';
    async requestOpened(_r: RequestRecord, d: DeviceRecord): Promise<void> {
      throw new PushTokenRejectedError(d.pushToken ?? '', 'messaging/registration-token-not-registered');
    }
    async requestSettled(): Promise<void> {}
  }

  it('drops the rejected token from the device and logs it without the token', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    fx = coreFixture();
    const deviceId = await withDevice(fx);
    await fx.store.setPushToken(deviceId, 'secret-fcm-token-1', 'android');
    // A RequestService with a logger we can read; the fixture's one is silent.
    const requests = new RequestService(fx.store, fx.clock, fx.approvals, [new TokenRejector()], createLogger({ level: 'debug', destination, pretty: false }), { requestTtlMs: 300_000 }, fx.cooldowns);
    const device = await fx.store.getDevice(deviceId);
    assert.ok(device);
    await requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '127.0.0.9' });
    await eventually(async () => (await fx!.store.getDevice(deviceId))?.pushToken === undefined);
    const log = lines.join('');
    assert.match(log, /"event":"device.push-token"/);
    assert.match(log, /"action":"dropped"/);
    assert.equal(log.includes('secret-fcm-token-1'), false);
  });

  it('keeps a token the app registered after the rejected push left', async () => {
    fx = coreFixture({ notifiers: [new TokenRejector()] });
    const deviceId = await withDevice(fx);
    await fx.store.setPushToken(deviceId, 'old-token', 'ios');
    const device = await fx.store.getDevice(deviceId);
    assert.ok(device);
    await fx.store.setPushToken(deviceId, 'new-token', 'ios');
    await fx.requests.openConnection({ user: 'alice', device, protocol: 'imap', clientIp: '127.0.0.8' });
    await turns();
    assert.equal((await fx.store.getDevice(deviceId))?.pushToken, 'new-token');
  });
});

describe('a hold on the real clock', () => {
  it('ends at its time even when the garbage collector runs during it, with the client\'s signal attached', async () => {
    // The collector on demand, as under load: a hold built on AbortSignal.any([client,
    // AbortSignal.timeout(hold)]) lost its weakly held timeout here and never ended.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    fx = await coreFixture();
    const requests = new RequestService(fx.store, systemClock, fx.approvals, [], silentLogger(), { requestTtlMs: 60_000 }, fx.cooldowns);
    const client = new AbortController();
    const wait = requests.waitForDecision('no-such-request', 300, client.signal);
    for (let i = 0; i < 5; i++) {
      gc();
      await sleep(20);
    }
    assert.equal(await Promise.race([wait, sleep(5_000).then(() => 'still held 5 s later')]), 'timeout');
    // The client's leaving still ends a hold at once.
    const left = requests.waitForDecision('no-such-request', 60_000, client.signal);
    gc();
    client.abort();
    assert.equal(await Promise.race([left, sleep(5_000).then(() => 'still held 5 s later')]), 'aborted');
  });
});
