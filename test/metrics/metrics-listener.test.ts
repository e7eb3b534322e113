import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load-config.js';
import { silentLogger } from '../../src/log/logger.js';
import { startMailotp } from '../../src/main.js';
import { httpGet } from '../e2e/metrics-kit.js';

const dir = mkdtempSync(join(tmpdir(), 'mailotp-metrics-listener-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The smallest instance: no TLS (so no mail listener is served), no portal, a SQLite file. */
function config(extra: Record<string, unknown>) {
  return parseConfig(
    {
      listeners: [{ protocol: 'imap', host: '127.0.0.1', port: 0, tls: 'none', allowInsecure: true }],
      upstream: { imap: { host: '127.0.0.1', port: 9, tls: 'none' } },
      portal: { enabled: false, tls: false },
      store: { driver: 'sqlite', path: 'data/mailotp.db' },
      ...extra,
    },
    dir,
  );
}

describe('metrics listener lifecycle', () => {
  it('is not started without metrics.port', async () => {
    const running = await startMailotp(config({}), { logger: silentLogger() });
    try {
      assert.equal(running.metrics, null);
    } finally {
      await running.stop(0);
    }
  });

  it('is started with metrics.port, reports an unreachable upstream, and is closed by stop()', async () => {
    const running = await startMailotp(config({ metrics: { port: 0 } }), { logger: silentLogger() });
    let port = 0;
    try {
      assert.ok(running.metrics);
      port = running.metrics.port;
      assert.ok(port > 0);
      assert.equal((await httpGet('127.0.0.1', port, '/healthz')).status, 200);
      const ready = await httpGet('127.0.0.1', port, '/readyz');
      assert.equal(ready.status, 503);
      assert.deepEqual(JSON.parse(ready.body), { status: 'not ready', failed: ['upstream.imap'] });
      const post = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/metrics', method: 'POST', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(post, 405);
    } finally {
      await running.stop(0);
    }
    await assert.rejects(httpGet('127.0.0.1', port, '/healthz'), /ECONNREFUSED/);
  });
});
