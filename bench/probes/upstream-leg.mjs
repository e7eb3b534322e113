// Dovecot's plain login (what mailotp does upstream for every login), split: connect to greeting,
// LOGIN to OK. Rounds as in the scale run: LOGINS sequential logins, then SECONDS of logins by
// PARALLEL clients. Shows which half of the upstream leg holds its tail, and where in the rounds
// the logins over 3 ms fall.
// Usage (after npm run build): node bench/probes/upstream-leg.mjs [ROUNDS=8] [LOGINS=100] [SECONDS=3] [PARALLEL=50]
import { RawImap, pct } from './probe-kit.mjs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
const { startDovecot } = await import(`${dist}test/helpers/dovecot.js`);
const [rounds, logins, seconds, parallel] = [8, 100, 3, 50].map((d, i) => Number(process.argv[2 + i] ?? d));
const dovecot = await startDovecot({ users: [{ user: 'bench', password: 'bench-pass-1' }], maxConnections: 1200, clientsPerMailProcess: 500 });
const port = dovecot.ports.imap;
const greet = [], auth = [], total = [], slow = [];
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
try {
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < logins; i++) {
      const t0 = process.hrtime.bigint();
      const c = await RawImap.open(port, undefined, { plain: true });
      const g = ms(t0);
      const t1 = process.hrtime.bigint();
      await c.cmd('a', 'LOGIN bench bench-pass-1');
      auth.push(ms(t1));
      greet.push(g);
      const whole = ms(t0);
      total.push(whole);
      if (whole > 3) slow.push(`r${r}#${i}:${whole.toFixed(1)}`);
      c.sock.write('z LOGOUT\r\n');
      c.close();
    }
    const end = Date.now() + seconds * 1000;
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (Date.now() < end) {
        const c = await RawImap.open(port, undefined, { plain: true });
        await c.cmd('a', 'LOGIN bench bench-pass-1');
        c.sock.write('z LOGOUT\r\n');
        c.close();
      }
    }));
  }
} finally {
  await dovecot.stop();
}
for (const [name, a] of [['connect to greeting', greet], ['LOGIN to OK', auth], ['whole leg', total]]) {
  a.sort((x, y) => x - y);
  console.log(`${name.padEnd(20)} p50 ${pct(a, 50).toFixed(2)} ms  p90 ${pct(a, 90).toFixed(2)}  p99 ${pct(a, 99).toFixed(2)} ms  (${(pct(a, 99) / pct(a, 50)).toFixed(2)}x)`);
}
console.log(`over 3 ms (round#index:ms): ${slow.join(' ')}`);
