// Login latency one client at a time, and logins per second with PARALLEL clients, in interleaved
// rounds (the order of the targets rotates each round) over: direct Dovecot (TLS), the bare Node TLS
// pipe, mailotp from this build and, when BEFORE_ROOT is given (a checkout of another commit, built),
// mailotp from that build: a before/after comparison where machine noise hits both alike.
// mailotp runs on SQLite with a plain upstream and a tap given, so every login takes the approved path;
// the preload beside this file reports each mailotp's event-loop delay and SQLite statements.
// PROBE_STORE=redis: every mailotp on Redis instead (one redis-server of the probe's own, a key prefix each);
// PROBE_REDIS_DELAY_MS=D puts Redis D ms away each way (a relay in this process that holds every chunk D ms),
// as on a network.
// Usage: node bench/probes/login-compare.mjs [ROUNDS=6] [LOGINS=40] [SECONDS=3] [PARALLEL=50] [BEFORE_ROOT]
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { PRELOAD, login, pct, report } from './probe-kit.mjs';

const [rounds, logins, seconds, parallel] = [6, 40, 3, 50].map((d, i) => Number(process.argv[2 + i] ?? d));
const beforeRoot = process.argv[6];
const here = fileURLToPath(new URL('../../', import.meta.url));
const { startDovecot } = await import(`${here}dist/test/helpers/dovecot.js`);
const { startTlsPipe } = await import(`${here}dist/bench/scale-targets.js`);
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

const dovecot = await startDovecot({ users: [{ user: 'bench', password: 'bench-pass-1' }], maxConnections: 1000, clientsPerMailProcess: 500 });
const stops = [() => dovecot.stop()];
const redis = process.env.PROBE_STORE === 'redis' ? await (await import(`${here}dist/test/helpers/redis-server.js`)).startRedisServer() : null;
if (redis) stops.push(() => redis.stop());
let redisPrefixes = 0; // one key prefix per mailotp on the shared Redis
const redisUrl = redis && process.env.PROBE_REDIS_DELAY_MS ? await delayingRelay(redis.port, Number(process.env.PROBE_REDIS_DELAY_MS)) : redis?.url;

/** A TCP relay to 127.0.0.1:port that passes every chunk on after delayMs, both ways; its redis:// URL. */
async function delayingRelay(port, delayMs) {
  const net = await import('node:net');
  const server = net.createServer((inbound) => {
    const outbound = net.connect(port, '127.0.0.1');
    const relay = (from, to) => from.on('data', (chunk) => setTimeout(() => to.destroyed || to.write(chunk), delayMs));
    relay(inbound, outbound);
    relay(outbound, inbound);
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]]) {
      a.setNoDelay(true);
      a.on('error', () => b.destroy());
      a.on('close', () => setTimeout(() => b.destroy(), delayMs));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  stops.unshift(() => new Promise((resolve) => server.close(resolve)));
  return `redis://127.0.0.1:${server.address().port}`;
}

/** mailotp from the build under `root`, approved path, preload loaded. */
async function mailotp(root) {
  const { startMailotp, enrol, waitForRequest, decide } = await import(`${root}dist/test/e2e/harness.js`);
  // That build's client: it trusts that build's test CA, which signed that mailotp's certificate.
  const { RawImap } = await import(`${root}dist/bench/raw-imap.js`);
  const loginTo = async (port) => {
    const c = await RawImap.open(port);
    await c.cmd('a', 'LOGIN bench bench-pass-1');
    return c;
  };
  process.env.NODE_OPTIONS = `--require ${PRELOAD}`;
  try {
    const m = await startMailotp({
      dovecot,
      upstreamTls: 'none',
      logLevel: 'info',
      ...(redis ? { store: { driver: 'redis', url: redisUrl, keyPrefix: `probe${++redisPrefixes}:` } } : {}),
      daemonOtp: { holdTime: '30s' },
      limits: { failedLoginsPerUser: 100000, failedLoginsPerIp: 100000, maxConnections: 2000, maxConnectionsPerIp: 2000 },
    });
    stops.unshift(() => m.stop());
    const token = await enrol(m, 'bench');
    const first = loginTo(m.imaps).then((c) => c.close());
    const req = await waitForRequest(m.portal, token);
    await decide(m.portal, token, req.id, 'approve');
    await first;
    return { port: m.imaps, pid: m.child.pid, login: loginTo };
  } finally {
    delete process.env.NODE_OPTIONS;
  }
}

if (process.env.PROBE_VERBOSE) console.error('dovecot up');
const pipe = await startTlsPipe(dovecot.ports.imap);
stops.unshift(() => pipe.stop());
const targets = [
  { name: 'direct (Dovecot TLS)', port: dovecot.ports.imaps, login },
  { name: 'bare Node TLS pipe', port: pipe.port, login },
  { name: 'mailotp (this build)', ...(await mailotp(here)) },
];
if (beforeRoot) targets.push({ name: `mailotp (${beforeRoot})`, ...(await mailotp(beforeRoot.endsWith('/') ? beforeRoot : `${beforeRoot}/`)) });
for (const t of targets) {
  t.serial = [];
  t.perSecond = [];
  t.stats = { calls: 0, loopP99: [], loopMax: 0, sqliteMax: 0, logins: 0 };
}

async function serial(t) {
  for (let i = 0; i < logins; i++) {
    const t0 = process.hrtime.bigint();
    const c = await t.login(t.port);
    t.serial.push(Number(process.hrtime.bigint() - t0) / 1e6);
    c.sock.write('z LOGOUT\r\n');
    c.close();
  }
}

async function burst(t) {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (Date.now() < end) {
        const c = await t.login(t.port);
        done++;
        c.sock.write('z LOGOUT\r\n');
        c.close();
      }
    }),
  );
  t.perSecond.push(done / (Number(process.hrtime.bigint() - t0) / 1e9));
  return done;
}

console.log(`load average at start ${load()}`);
for (let r = 0; r < rounds; r++) {
  const order = targets.map((_, i) => targets[(i + r) % targets.length]);
  for (const t of order) {
    if (process.env.PROBE_VERBOSE) console.error(`  ${t.name}`);
    if (t.pid) await report(t.pid);
    await serial(t);
    const n = await burst(t);
    if (t.pid) {
      const s = await report(t.pid);
      t.stats.calls += s.sqliteCalls;
      t.stats.logins += logins + n;
      t.stats.loopP99.push(s.loopP99Ms);
      t.stats.loopMax = Math.max(t.stats.loopMax, s.loopMaxMs);
      t.stats.sqliteMax = Math.max(t.stats.sqliteMax, s.sqliteMaxMs);
    }
  }
  console.error(`round ${r + 1}/${rounds} done, load ${load()}`);
}
const median = (xs) => pct([...xs].sort((a, b) => a - b), 50);
console.log(`${rounds} interleaved rounds; per round and target ${logins} serial logins, then ${seconds} s of ${parallel} parallel clients`);
console.log('| path | serial p50 ms | serial p99 ms | p99/p50 | logins/s (median) | SQLite statements/login | loop delay p99 (median of rounds) / max ms |');
console.log('|---|---|---|---|---|---|---|');
for (const t of targets) {
  const s = [...t.serial].sort((a, b) => a - b);
  const [p50, p99] = [pct(s, 50), pct(s, 99)];
  const st = t.pid ? [(t.stats.calls / t.stats.logins).toFixed(1), `${median(t.stats.loopP99).toFixed(1)} / ${t.stats.loopMax.toFixed(1)}`] : ['', ''];
  console.log(`| ${t.name} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${(p99 / p50).toFixed(2)}x | ${median(t.perSecond).toFixed(0)} | ${st.join(' | ')} |`);
}
console.log(`load average at end ${load()}`);
for (const stop of stops) await stop().catch(() => undefined);
