import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { createLogger } from '../../src/log/logger.js';
import { LogNotifier } from '../../src/push/log-notifier.js';

test('LogNotifier logs opened and settled requests without secrets', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const n = new LogNotifier(createLogger({ level: 'info', destination, pretty: false }));
  const request: RequestRecord = {
    id: 'req0000000000000000002',
    type: 'connection',
    user: 'alice',
    deviceId: 'dev-1',
    protocol: 'smtp',
    clientIp: '203.0.113.9',
    createdAt: Date.UTC(2026, 0, 1),
    expiresAt: Date.UTC(2026, 0, 1, 0, 5),
    status: 'pending',
    choices: [11, 22, 33],
  };
  const device: DeviceRecord = {
    deviceId: 'dev-1',
    user: 'alice',
    name: 'Pixel',
    tokenHash: 'e'.repeat(64),
    createdAt: 0,
    pushToken: 'very-secret-push-token',
    pushPlatform: 'ios',
  };
  await n.requestOpened(request, device);
  await n.requestSettled({ ...request, status: 'approved' }, null);
  assert.equal(lines.length, 2);
  const [opened, settled] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(opened?.event, 'request.pending');
  assert.equal(opened?.user, 'alice');
  assert.equal(opened?.clientIp, '203.0.113.9');
  assert.equal(opened?.deviceName, 'Pixel');
  assert.equal(opened?.expiresAt, '2026-01-01T00:05:00.000Z');
  assert.equal(settled?.event, 'request.settled');
  assert.equal(settled?.status, 'approved');
  // Without the log's own timestamp, which holds a 22 at 02:22 or at :22 seconds.
  const all = lines.map((l) => l.replace(/"time":"[^"]*",/, '')).join('\n');
  assert.doesNotMatch(all, /very-secret-push-token|eeeeeeee|\b22\b/);
});
