// mailotp's JS heap after 200 logins and a full GC (SQLite store, no push channel, no metrics):
// what the code loaded and the state kept cost before any session is open.
// Usage (after npm run build): node bench/probes/idle-heap.mjs [LOGINS=200]
import { report, rssKiB, sequentialLogins, startTarget } from './probe-kit.mjs';

const logins = Number(process.argv[2] ?? 200);
const t = await startTarget('mailotp', 100);
await sequentialLogins(t.port, logins);
await new Promise((r) => setTimeout(r, 1000));
const r = await report(t.pid);
const mib = (b) => (b / 2 ** 20).toFixed(1);
console.log(`after ${logins} logins and a full GC: heap used ${mib(r.after.heapUsed)} MiB (old space ${mib(r.spaces.old_space.used)}, code ${mib(r.spaces.code_space.used)}), RSS ${(rssKiB(t.pid) / 1024).toFixed(1)} MiB`);
await t.stop();
