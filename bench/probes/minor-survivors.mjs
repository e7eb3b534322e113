// What of a batch of finished logins a young-generation collection cannot free: LOGINS sequential
// logins through mailotp (approved path, plain upstream), a wait, then two minor GCs in mailotp
// (bench/probes/minor-gc.cjs). "kept" is what the first one left in the young generation, "promoted"
// what the old generation grew by over both. Every login is over by then, so what is kept is held by
// something other than a login in flight (a closed TLS socket is, until a full collection).
// Usage (after npm run build): node bench/probes/minor-survivors.mjs [BATCHES=6] [LOGINS=100] [WAIT_MS=0]
import { fileURLToPath } from 'node:url';
import { sequentialLogins, signalForFile, startTarget } from './probe-kit.mjs';

const [batches, logins, waitMs] = [6, 100, 0].map((d, i) => Number(process.argv[2 + i] ?? d));
process.env.PROBE_PRELOAD ??= '0';
const t = await startTarget('mailotp', 100, `--require ${fileURLToPath(new URL('./minor-gc.cjs', import.meta.url))}`);
const minorGcs = () => signalForFile(t.pid, 'SIGUSR2', `minor-${t.pid}.json`);
await sequentialLogins(t.port, 300);
const kept = [];
const promoted = [];
for (let b = 0; b < batches; b++) {
  await minorGcs(); // start from an empty young generation
  await sequentialLogins(t.port, logins);
  await new Promise((r) => setTimeout(r, waitMs));
  const g = await minorGcs();
  kept.push(g.between.new_space / 1024);
  promoted.push((g.after.old_space - g.before.old_space) / 1024);
}
const list = (a) => a.map((v) => v.toFixed(0)).join(', ');
console.log(`per ${logins} logins (${batches} batches, ${waitMs} ms after the last): kept by a minor GC ${list(kept)} KiB; old generation grew ${list(promoted)} KiB`);
await t.stop();
