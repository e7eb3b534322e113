import http from 'node:http';
import type { MailotpProcess } from './harness.js';

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** A plain HTTP GET, as Prometheus or a load balancer's health check makes it. */
export function httpGet(host: string, port: number, path: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer`)));
    req.on('error', reject);
  });
}

/** The metrics listener's address as the started instance logged it. */
export function metricsAddress(m: MailotpProcess): { host: string; port: number } {
  const line = m.events().find((e) => e.msg === 'metrics listening');
  if (!line) throw new Error('no "metrics listening" log line');
  return { host: String(line.host), port: Number(line.port) };
}

/** One scrape, parsed: sample(name, labels) is the value of the one series with those labels (0 when absent). */
export interface Scrape {
  text: string;
  sample(name: string, labels?: Record<string, string>): number;
}

function parseLabels(raw: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of raw.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!;
  return labels;
}

export function parseScrape(text: string): Scrape {
  const series: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    series.push({ name: m[1]!, labels: parseLabels(m[2] ?? ''), value: Number(m[3]) });
  }
  return {
    text,
    sample(name, labels = {}) {
      const hits = series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      return hits.reduce((sum, s) => sum + s.value, 0);
    },
  };
}

export async function scrape(host: string, port: number): Promise<Scrape> {
  const r = await httpGet(host, port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return parseScrape(r.body);
}

/** Scrapes until pred holds (counters fed after the client got its answer), or fails with the last scrape. */
export async function scrapeUntil(host: string, port: number, pred: (s: Scrape) => boolean, what: string, timeoutMs = 15_000): Promise<Scrape> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await scrape(host, port);
    if (pred(s)) return s;
    if (Date.now() > end) throw new Error(`metrics never showed ${what}; last scrape:\n${s.text.split('\n').filter((l) => l.startsWith('mailotp_') && !l.includes('_bucket')).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls /readyz until it answers `status` (and, when given, a body that `body` accepts). */
export async function readyzUntil(host: string, port: number, status: number, body: (text: string) => boolean = () => true, timeoutMs = 20_000): Promise<HttpAnswer> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await httpGet(host, port, '/readyz');
    if (r.status === status && body(r.body)) return r;
    if (Date.now() > end) throw new Error(`/readyz stayed ${r.status} ${r.body}, expected ${status}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}
