import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { MeteredNotifier } from '../../src/metrics/metered-notifier.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus-metrics.js';
import { LogNotifier } from '../../src/push/log-notifier.js';
import type { Notifier } from '../../src/core/ports/notifier.js';
import { loadOrCreateVapidKeys } from '../../src/push/vapid-keys.js';
import { WebhookNotifier } from '../../src/push/webhook-notifier.js';
import { WebPushNotifier } from '../../src/push/webpush-notifier.js';
import { parseScrape } from '../e2e/metrics-kit.js';

const device: DeviceRecord = { deviceId: 'dev-1', user: 'alice', name: 'Phone', tokenHash: 'ab'.repeat(32), createdAt: 1 };
const request: RequestRecord = {
  id: 'req-1',
  type: 'connection',
  user: 'alice',
  deviceId: 'dev-1',
  protocol: 'imap',
  clientIp: '203.0.113.7',
  createdAt: 1,
  expiresAt: 300_001,
  status: 'pending',
};

describe('push metrics', () => {
  let hook: http.Server;
  let hookStatus = 200;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mailotp-metrics-push-'));
    // A real receiver: the webhook's verdict comes from its HTTP answer.
    hook = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(hookStatus).end());
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await new Promise((resolve) => hook.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts sends by channel, event and result, and passes each outcome and failure on', async () => {
    const metrics = new PrometheusMetrics(new FakeClock());
    const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
    const webhook = new MeteredNotifier(new WebhookNotifier({ url, secret: 'x'.repeat(32), timeoutMs: 2_000 }, silentLogger(), { retries: 0 }), metrics);
    const webpush = new MeteredNotifier(new WebPushNotifier({ keys: loadOrCreateVapidKeys(join(dir, 'vapid.json')).keys, subject: 'mailto:admin@example.com', timeoutMs: 2_000 }, silentLogger()), metrics);
    const log = new MeteredNotifier(new LogNotifier(silentLogger()), metrics);

    hookStatus = 200;
    await webhook.requestOpened(request, device);
    hookStatus = 400;
    await assert.rejects(webhook.requestSettled({ ...request, status: 'denied', decidedAt: 2 }, device));
    assert.equal(await webpush.requestOpened(request, device), 'skipped', 'a device without a subscription is skipped');
    await log.requestOpened(request, device);
    // The recovery-code notice travels through the wrapper too (it was dropped when metrics were on).
    hookStatus = 200;
    assert.ok(webhook.deviceNotice, 'the webhook notifier has deviceNotice, so the wrapper must offer it');
    await webhook.deviceNotice(device, { kind: 'recovery-code-used', user: 'alice', left: 9, at: 3 });

    const s = parseScrape(await metrics.registry.metrics());
    assert.equal(s.sample('mailotp_push_sends_total', { channel: 'webhook', event: 'opened', result: 'sent' }), 1);
    assert.equal(s.sample('mailotp_push_sends_total', { channel: 'webhook', event: 'settled', result: 'failed' }), 1);
    assert.equal(s.sample('mailotp_push_sends_total', { channel: 'webpush', event: 'opened', result: 'skipped' }), 1);
    assert.equal(s.sample('mailotp_push_sends_total', { channel: 'log', event: 'opened', result: 'sent' }), 1);
    assert.equal(s.sample('mailotp_push_sends_total', { channel: 'webhook', event: 'notice', result: 'sent' }), 1);
  });

  it('offers the optional calls only when the wrapped notifier has them', () => {
    const metrics = new PrometheusMetrics(new FakeClock());
    const log = new LogNotifier(silentLogger());
    const webhook = new WebhookNotifier({ url: 'http://127.0.0.1:9/', secret: 'x'.repeat(32), timeoutMs: 100 }, silentLogger());
    for (const inner of [log, webhook] as Notifier[]) {
      const wrapped = new MeteredNotifier(inner, metrics);
      assert.equal(wrapped.name, inner.name);
      assert.equal(typeof wrapped.requestReported, typeof inner.requestReported, `${inner.name} requestReported`);
      assert.equal(typeof wrapped.deviceRemoved, typeof inner.deviceRemoved, `${inner.name} deviceRemoved`);
      assert.equal(typeof wrapped.deviceNotice, typeof inner.deviceNotice, `${inner.name} deviceNotice`);
      assert.equal(typeof wrapped.close, typeof inner.close, `${inner.name} close`);
    }
  });
});
