// Which slow logins through mailotp overlapped a GC pause or an event-loop stall in mailotp?
// Rounds as in `npm run bench -- --scale`: per round, LOGINS sequential logins, then SECONDS of
// logins by PARALLEL clients (the burst leaves garbage and busy Dovecot processes behind).
// Usage (after npm run build): node bench/probes/tail-attrib.mjs [ROUNDS=8] [LOGINS=25] [SECONDS=3] [PARALLEL=50] [IDLE_S=0]
// IDLE_S: mailotp left idle that long before each round's sequential logins (as in the scale run,
// where the other targets take their turn meanwhile).
import { login, pct, report, startTarget } from './probe-kit.mjs';

const [rounds, logins, seconds, parallel, idleS] = [8, 25, 3, 50, 0].map((d, i) => Number(process.argv[2 + i] ?? d));
process.env.PROBE_EVENTS = '1';
// PROBE_NODE_OPTIONS: extra node flags for mailotp (e.g. --no-memory-reducer).
const t = await startTarget('mailotp', 100, process.env.PROBE_NODE_OPTIONS ?? '');
await report(t.pid);
const samples = [];
const direct = [];
for (let r = 0; r < rounds; r++) {
  // Dovecot's own TLS port, interleaved: the upstream's tail under the same conditions.
  for (let i = 0; i < logins; i++) {
    const t0 = process.hrtime.bigint();
    const c = await login(t.dovecot.ports.imaps);
    direct.push(Number(process.hrtime.bigint() - t0) / 1e6);
    c.sock.write('z LOGOUT\r\n');
    c.close();
  }
  await new Promise((r) => setTimeout(r, idleS * 1000));
  for (let i = 0; i < logins; i++) {
    const start = Date.now();
    const t0 = process.hrtime.bigint();
    const c = await login(t.port);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    samples.push({ r, i, start, ms });
    c.sock.write('z LOGOUT\r\n');
    c.close();
  }
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (Date.now() < until) (await login(t.port)).close();
    }),
  );
}
const rep = await report(t.pid);
const sorted = samples.map((s) => s.ms).sort((a, b) => a - b);
const p50 = pct(sorted, 50);
console.log(`${samples.length} sequential logins: p50 ${p50.toFixed(1)} ms, p99 ${pct(sorted, 99).toFixed(1)} ms (${(pct(sorted, 99) / p50).toFixed(2)}x)`);
const ds = direct.sort((a, b) => a - b);
console.log(`${ds.length} direct logins (Dovecot TLS, interleaved): p50 ${pct(ds, 50).toFixed(1)} ms, p99 ${pct(ds, 99).toFixed(1)} ms (${(pct(ds, 99) / pct(ds, 50)).toFixed(2)}x)`);
const ev = rep.events ?? [];
const byKind = {};
for (const e of ev) (byKind[e.what] ??= []).push(e.ms);
for (const [k, v] of Object.entries(byKind)) console.log(`  mailotp ${k}: ${v.length}, total ${v.reduce((a, b) => a + b, 0).toFixed(0)} ms, max ${Math.max(...v).toFixed(1)} ms`);
console.log(`mailotp SQLite statements over 2 ms: ${JSON.stringify(rep.slow)}`);
console.log('slowest logins, and what in mailotp overlapped them:');
for (const s of [...samples].sort((a, b) => b.ms - a.ms).slice(0, 12)) {
  const over = ev.filter((e) => e.at < s.start + s.ms && e.at + e.ms > s.start).map((e) => `${e.what} ${e.ms.toFixed(1)}`);
  console.log(`  ${s.ms.toFixed(1)} ms (round ${s.r}, login ${s.i}): ${over.join(', ') || 'nothing'}`);
}
await t.stop();
