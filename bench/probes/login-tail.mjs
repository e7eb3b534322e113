// Sequential logins through mailotp, then its event-loop delay and the time its SQLite statements
// took meanwhile (the suspects for the p99 tail). With PARALLEL > 1, that many clients log in at once.
// Usage: node bench/probes/login-tail.mjs [LOGINS=200] [PARALLEL=1]
import { login, pct, report, startTarget } from './probe-kit.mjs';

const n = Number(process.argv[2] ?? 200);
const t = await startTarget('mailotp', 50);
await report(t.pid);
const parallel = Number(process.argv[3] ?? 1);
const times = [];
let started = 0;
const wall0 = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: parallel }, async () => {
    while (started++ < n) {
      const t0 = process.hrtime.bigint();
      const c = await login(t.port);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      c.sock.write('z LOGOUT\r\n');
      c.close();
    }
  }),
);
const wallS = Number(process.hrtime.bigint() - wall0) / 1e9;
times.sort((a, b) => a - b);
console.log(`${n} logins by ${parallel} client(s): ${(n / wallS).toFixed(0)} logins/s`);
const r = await report(t.pid);
console.log(`login p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms, max ${times.at(-1).toFixed(1)} ms`);
console.log(`event loop delay p50 ${r.loopP50Ms.toFixed(1)} ms, p99 ${r.loopP99Ms.toFixed(1)} ms, max ${r.loopMaxMs.toFixed(1)} ms`);
console.log(`SQLite: ${(r.sqliteCalls / n).toFixed(1)} statements and ${(r.sqliteMs / n).toFixed(2)} ms per login; p99 ${r.sqliteP99Ms.toFixed(2)} ms, max ${r.sqliteMaxMs.toFixed(1)} ms; over 2 ms: ${JSON.stringify(r.slow)}`);
// Per login, by statement (BEGIN/COMMIT/SAVEPOINT included): what the approved path costs the store.
for (const [sql, c] of Object.entries(r.counts ?? {}).sort((a, b) => b[1] - a[1])) console.log(`  ${(c / n).toFixed(2)}  ${sql}`);
await t.stop();
