import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { meteredStore } from '../../src/metrics/metered-store.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus-metrics.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import { coreFixture, withDevice, type CoreFixture } from '../core/core-fixture.js';
import { parseScrape, type Scrape } from '../e2e/metrics-kit.js';
import { eventLogContract } from '../stores/event-log-contract.js';
import { storeContract } from '../stores/store-contract.js';

// The decorator must be invisible to every caller: the whole contract, through it.
const metered = async () => {
  const inner = new SqliteStore({ path: ':memory:' });
  return { store: meteredStore(inner, new PrometheusMetrics(new FakeClock())), cleanup: () => inner.close() };
};
storeContract('sqlite behind the metrics decorator', metered);
eventLogContract('sqlite behind the metrics decorator', metered);

describe('store metrics', () => {
  let fx: CoreFixture | null = null;
  afterEach(async () => {
    await fx?.close();
    fx = null;
  });

  const scrape = async (metrics: PrometheusMetrics): Promise<Scrape> => parseScrape(await metrics.registry.metrics());

  it('counts requests opened, reported and expired where they are committed, with the time to the answer', async () => {
    const metrics = new PrometheusMetrics(new FakeClock());
    fx = coreFixture({ store: meteredStore(new SqliteStore({ path: ':memory:' }), metrics), daemon: { holdTimeMs: 20 } });
    const deviceId = await withDevice(fx);

    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '203.0.113.1')))).kind, 'pending-timeout');
    const [first] = await fx.requests.listPending(deviceId);
    assert.ok(first);
    fx.clock.advance(7_000);
    assert.equal((await fx.requests.decide(deviceId, first.id, 'report')).status, 'denied');

    assert.equal((await fx.timeOut(fx.authorizer.authorize(fx.attempt('alice', 'right', '203.0.113.2')))).kind, 'pending-timeout');
    fx.clock.advance(300_000);
    assert.equal(await fx.requests.sweepExpired(), 1);

    const s = await scrape(metrics);
    assert.equal(s.sample('mailotp_requests_opened_total', { type: 'connection' }), 2);
    assert.equal(s.sample('mailotp_request_outcomes_total', { type: 'connection', outcome: 'reported' }), 1);
    assert.equal(s.sample('mailotp_request_outcomes_total', { type: 'connection', outcome: 'expired' }), 1);
    assert.equal(s.sample('mailotp_request_outcomes_total', { type: 'connection', outcome: 'denied' }), 0, 'a report is not also a deny');
    assert.equal(s.sample('mailotp_request_decision_seconds_count', { type: 'connection', outcome: 'reported' }), 1);
    assert.equal(s.sample('mailotp_request_decision_seconds_sum', { type: 'connection', outcome: 'reported' }), 7.02, 'seconds from opened to answered, by the clock of the core (the 20 ms hold ran on it too)');
    assert.equal(s.sample('mailotp_request_decision_seconds_count', { type: 'connection', outcome: 'expired' }), 0, 'nobody answered an expired one');
    assert.ok(s.sample('mailotp_store_operation_seconds_count', { op: 'getApproval' }) >= 2, 'every store call is timed by its method');
    assert.equal(s.sample('mailotp_store_errors_total'), 0);
  });

  it('counts a failed store call as an error of its operation, and passes the failure on', async () => {
    const metrics = new PrometheusMetrics(new FakeClock());
    const inner = new SqliteStore({ path: ':memory:' });
    const store = meteredStore(inner, metrics);
    await inner.close();
    await assert.rejects(store.getUser('alice'));
    await assert.rejects(store.ping());
    const s = await scrape(metrics);
    assert.equal(s.sample('mailotp_store_errors_total', { op: 'getUser' }), 1);
    assert.equal(s.sample('mailotp_store_errors_total', { op: 'ping' }), 1);
    assert.equal(s.sample('mailotp_store_operation_seconds_count', { op: 'getUser' }), 1, 'failures are timed too');
  });
});
