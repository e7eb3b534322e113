/**
 * What the metrics cost a login: the same N sequential IMAP logins (TLS, LOGIN, LOGOUT; a user
 * without two-factor, so every store call and counter of the approved path runs) through an
 * instance without metrics and one with metrics.port set, in interleaved rounds so that machine
 * noise hits both alike. Prints the median and p99 per login of each.
 * Then the decorator alone, in process: store calls on an in-memory SQLite store, bare and metered.
 * node dist/bench/metrics-overhead.js [--logins 100] [--rounds 6] [--calls 50000]
 */
import tls from 'node:tls';
import { testCerts } from '../test/helpers/certs.js';
import { startDovecot } from '../test/helpers/dovecot.js';
import { startMailotp, type MailotpProcess } from '../test/e2e/harness.js';
import { FakeClock } from '../src/core/clock.js';
import { meteredStore } from '../src/metrics/metered-store.js';
import { PrometheusMetrics } from '../src/metrics/prometheus-metrics.js';
import { SqliteStore } from '../src/stores/sqlite-store.js';
import type { Store } from '../src/core/ports/store.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const LOGINS = opt('logins', 100);
const ROUNDS = opt('rounds', 6);
const CALLS = opt('calls', 50_000);

/** Microseconds per store call (a hit and a read, as a login's rate limit makes them). */
async function perCall(store: Store): Promise<number> {
  const started = performance.now();
  for (let n = 0; n < CALLS; n++) {
    await store.hit('bench', 60_000, 1_000);
    await store.getUser('bench');
  }
  return ((performance.now() - started) * 1000) / (2 * CALLS);
}

async function micro(): Promise<void> {
  const bare = new SqliteStore({ path: ':memory:' });
  const inner = new SqliteStore({ path: ':memory:' });
  const metered = meteredStore(inner, new PrometheusMetrics(new FakeClock()));
  const t = { bare: [] as number[], metered: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    t.bare.push(await perCall(bare));
    t.metered.push(await perCall(metered));
  }
  const med = (xs: number[]) => quantile(xs, 0.5).toFixed(2);
  console.log(`store calls, ${ROUNDS} rounds of ${2 * CALLS}: bare ${med(t.bare)} µs per call, metered ${med(t.metered)} µs per call (medians of the rounds)`);
  await Promise.all([bare.close(), inner.close()]);
}

/** One login through the proxy: greeting, LOGIN, tagged OK, LOGOUT. */
function login(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const sock = tls.connect({ host: '127.0.0.1', port, ca: testCerts().ca, servername: 'localhost' });
    let buf = '';
    let step = 0;
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (step === 0 && /^\* OK.*\r\n/m.test(buf)) {
        step = 1;
        buf = '';
        sock.write('a LOGIN bench bench-pass-1\r\n');
      } else if (step === 1 && /^a (OK|NO|BAD).*\r\n/m.test(buf)) {
        if (!/^a OK/m.test(buf)) return reject(new Error(`login refused: ${buf}`));
        step = 2;
        const took = performance.now() - started;
        sock.end('b LOGOUT\r\n');
        resolve(took);
      }
    });
    sock.on('error', (err) => (step < 2 ? reject(err) : undefined));
  });
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function main(): Promise<void> {
  const dovecot = await startDovecot({ users: [{ user: 'bench', password: 'bench-pass-1' }] });
  const instances: { name: string; m: MailotpProcess; times: number[] }[] = [];
  try {
    const [plain, metered] = await Promise.all([
      startMailotp({ dovecot, logLevel: 'info', keepStdout: 1 << 16, limits: { failedLoginsPerUser: 100_000 } }),
      startMailotp({ dovecot, logLevel: 'info', keepStdout: 1 << 16, limits: { failedLoginsPerUser: 100_000 }, metrics: { port: 0 } }),
    ]);
    instances.push({ name: 'no metrics', m: plain, times: [] }, { name: 'metrics on', m: metered, times: [] });
    for (const i of instances) for (let n = 0; n < 10; n++) await login(i.m.imaps); // warm-up
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which goes first, so neither always gets the warmer machine.
      const order = round % 2 === 0 ? instances : [...instances].reverse();
      for (const i of order) for (let n = 0; n < LOGINS; n++) i.times.push(await login(i.m.imaps));
    }
    console.log(`${ROUNDS} interleaved rounds of ${LOGINS} sequential IMAP logins (implicit TLS, upstream TLS, SQLite store)`);
    for (const i of instances) {
      console.log(`${i.name.padEnd(11)} median ${quantile(i.times, 0.5).toFixed(2)} ms   p90 ${quantile(i.times, 0.9).toFixed(2)} ms   p99 ${quantile(i.times, 0.99).toFixed(2)} ms   (${i.times.length} logins)`);
    }
  } finally {
    await Promise.all(instances.map((i) => i.m.stop()));
    await dovecot.stop();
  }
}

await main();
await micro();
