import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/core/clock.js';
import { PrometheusMetrics } from '../../src/metrics/prometheus-metrics.js';
import { ROOT } from '../e2e/harness.js';

/** The metric families a registry exposes, from its # TYPE lines. */
async function families(metrics: PrometheusMetrics): Promise<Map<string, string>> {
  const text = await metrics.registry.metrics();
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** A series name as queried (x_bucket, x_count, x_sum of a histogram) back to its family. */
function familyOf(name: string, known: Map<string, string>): string | undefined {
  if (known.has(name)) return name;
  const base = name.replace(/_(bucket|count|sum)$/, '');
  return known.get(base) === 'histogram' ? base : undefined;
}

describe('Prometheus metric names', () => {
  it('every name the Grafana dashboard and the README use is one that mailotp exposes', async () => {
    const known = await families(new PrometheusMetrics(new FakeClock()));
    const dashboard = readFileSync(join(ROOT, 'docs', 'grafana-dashboard.json'), 'utf8');
    const used = new Set(dashboard.match(/mailotp_[a-z0-9_]+/g));
    assert.ok(used.size >= 10);
    for (const name of used) assert.ok(familyOf(name, known), `docs/grafana-dashboard.json queries ${name}, which mailotp does not expose`);

    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Metrics'), readme.indexOf('## Limits'));
    const listed = new Set([...section.matchAll(/^\| `(mailotp_[a-z0-9_]+)` \|/gm)].map((m) => m[1]!));
    const own = [...known.keys()].filter((n) => !/^mailotp_(process|nodejs)_/.test(n));
    assert.deepEqual([...listed].sort(), own.sort(), 'the README table lists exactly mailotp\'s own metrics');
  });

  it('keeps each instance apart: two registries in one process do not collide', async () => {
    const a = new PrometheusMetrics(new FakeClock());
    const b = new PrometheusMetrics(new FakeClock());
    a.connectionRefused('imap', 'maxConnections');
    assert.match(await a.registry.metrics(), /mailotp_connections_refused_total\{protocol="imap",cap="maxConnections"\} 1/);
    assert.doesNotMatch(await b.registry.metrics(), /mailotp_connections_refused_total\{/);
    assert.ok((await families(a)).has('mailotp_process_resident_memory_bytes'), 'default process metrics, prefixed');
  });
});
