// mailotp's CPU time per login (utime + stime of the daemon from /proc) with a TLS upstream, for
// clients on implicit TLS and on STARTTLS, and the login latency; with BEFORE_ROOT (a checkout of
// another commit, built), that build too, in interleaved rounds so machine noise hits both alike.
// Usage (after npm run build): node bench/probes/tls-cpu.mjs [ROUNDS=6] [LOGINS=200] [BEFORE_ROOT]
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { pct } from './probe-kit.mjs';

const [rounds, logins] = [6, 200].map((d, i) => Number(process.argv[2 + i] ?? d));
const beforeRoot = process.argv[4];
const here = fileURLToPath(new URL('../../', import.meta.url));
const stops = [];
const ticks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime, 1/100 s
};

async function mailotp(root) {
  const { startMailotp, enrol, waitForRequest, decide } = await import(`${root}dist/test/e2e/harness.js`);
  const { RawImap } = await import(`${root}dist/bench/raw-imap.js`);
  const { testCerts } = await import(`${root}dist/test/helpers/certs.js`);
  // Each build has its own test CA, so each gets its own Dovecot (same settings) signed by it.
  const { startDovecot } = await import(`${root}dist/test/helpers/dovecot.js`);
  const dovecot = await startDovecot({ users: [{ user: 'bench', password: 'bench-pass-1' }], maxConnections: 1000, clientsPerMailProcess: 500 });
  stops.unshift(() => dovecot.stop());
  const ca = testCerts().ca;
  const m = await startMailotp({
    dovecot,
    upstreamTls: 'implicit',
    logLevel: 'info',
    keepStdout: 1 << 16,
    daemonOtp: { holdTime: '30s' },
    limits: { failedLoginsPerUser: 100000, failedLoginsPerIp: 100000, maxConnections: 2000, maxConnectionsPerIp: 2000 },
  });
  stops.unshift(() => m.stop());
  const implicit = async () => {
    const c = await RawImap.open(m.imaps);
    await c.cmd('a', 'LOGIN bench bench-pass-1');
    c.sock.write('z LOGOUT\r\n');
    c.close();
  };
  const starttls = async () => {
    const plain = net.connect({ port: m.imapStarttls, host: '127.0.0.1' });
    let buf = '';
    const until = (re, s) => new Promise((resolve, reject) => {
      const on = (d) => { buf += d.toString('latin1'); if (re.test(buf)) { s.off('data', on); buf = ''; resolve(); } };
      s.on('data', on);
      s.once('error', reject);
    });
    await until(/^\* OK.*\r\n/m, plain);
    plain.write('s STARTTLS\r\n');
    await until(/^s OK.*\r\n/m, plain);
    const sec = tls.connect({ socket: plain, ca, servername: 'localhost' });
    await new Promise((resolve, reject) => sec.once('secureConnect', resolve).once('error', reject));
    sec.write('a LOGIN bench bench-pass-1\r\n');
    await until(/^a OK.*\r\n/m, sec);
    sec.write('z LOGOUT\r\n');
    sec.destroy();
  };
  const token = await enrol(m, 'bench');
  const first = implicit();
  const req = await waitForRequest(m.portal, token);
  await decide(m.portal, token, req.id, 'approve');
  await first;
  return { pid: m.child.pid, implicit, starttls };
}

const targets = [{ name: 'this build', ...(await mailotp(here)) }];
if (beforeRoot) targets.push({ name: beforeRoot, ...(await mailotp(beforeRoot.endsWith('/') ? beforeRoot : `${beforeRoot}/`)) });
for (const t of targets) t.res = { implicit: { ms: [], ticks: 0 }, starttls: { ms: [], ticks: 0 } };
for (let r = 0; r < rounds; r++) {
  for (const t of r % 2 ? [...targets].reverse() : targets) {
    for (const kind of ['implicit', 'starttls']) {
      const before = ticks(t.pid);
      for (let i = 0; i < logins; i++) {
        const t0 = process.hrtime.bigint();
        await t[kind]();
        t.res[kind].ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      t.res[kind].ticks += ticks(t.pid) - before;
    }
  }
  console.error(`round ${r + 1}/${rounds}`);
}
console.log(`${rounds} interleaved rounds x ${logins} sequential logins per client kind; upstream Dovecot over implicit TLS with a CA file`);
console.log('| mailotp | client TLS | CPU ms per login | login p50 ms | p99 ms | p99/p50 |');
console.log('|---|---|---|---|---|---|');
for (const t of targets) {
  for (const kind of ['implicit', 'starttls']) {
    const s = t.res[kind].ms.sort((a, b) => a - b);
    const cpu = (t.res[kind].ticks * 10) / s.length;
    console.log(`| ${t.name} | ${kind} | ${cpu.toFixed(2)} | ${pct(s, 50).toFixed(2)} | ${pct(s, 99).toFixed(2)} | ${(pct(s, 99) / pct(s, 50)).toFixed(2)}x |`);
  }
}
for (const stop of stops) await stop().catch(() => undefined);
