// Per idle logged-in session: RSS growth, and JS heap / external memory after a forced GC.
// Usage (after npm run build): node bench/probes/session-memory.mjs mailotp|pipe [SESSIONS=1000]
import { login, report, rssKiB, startTarget } from './probe-kit.mjs';

const which = process.argv[2] ?? 'mailotp';
const n = Number(process.argv[3] ?? 1000);
const t = await startTarget(which, n);
const conns = [];
for (let i = 0; i < 20; i++) conns.push(await login(t.port));
await new Promise((r) => setTimeout(r, 1000));
const r0 = rssKiB(t.pid);
const m0 = await report(t.pid);
while (conns.length < n + 20) conns.push(...(await Promise.all(Array.from({ length: 50 }, () => login(t.port)))));
await new Promise((r) => setTimeout(r, 2000));
const r1 = rssKiB(t.pid);
const m1 = await report(t.pid);
const per = (a, b) => ((a - b) / 1024 / n).toFixed(1);
console.log(
  `${which}: ${n} sessions; RSS ${((r1 - r0) / n).toFixed(1)} KiB/session; after GC: heap used ${per(m1.after.heapUsed, m0.after.heapUsed)}, ` +
    `external ${per(m1.after.external, m0.after.external)} KiB/session`,
);
for (const c of conns) c.close();
await t.stop();
