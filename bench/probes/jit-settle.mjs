// How long V8 keeps optimising after mailotp starts: sequential logins (approved path, plain upstream)
// in batches, and per batch the functions TurboFan finished optimising and the deoptimisations, from
// V8's --trace-opt / --trace-deopt lines. Each optimisation is a few ms of a background thread's CPU,
// which on two cores is taken from the login in flight (bench/probes/sched-attrib.mjs).
// PROBE_PRELOAD=1: with the probes' preload, whose statement timer deoptimises again and again.
// Usage (after npm run build): node bench/probes/jit-settle.mjs [BATCHES=8] [LOGINS=500]
import { fileURLToPath } from 'node:url';
import { sequentialLogins, startTarget } from './probe-kit.mjs';

const [batches, perBatch] = [8, 500].map((d, i) => Number(process.argv[2 + i] ?? d));
process.env.PROBE_KEEP_STDOUT = '1'; // the trace lines are read from mailotp's stdout
process.env.PROBE_PRELOAD ??= '0';
const t = await startTarget('mailotp', 100, `--require ${fileURLToPath(new URL('./trace-opt.cjs', import.meta.url))}`);
const count = () => {
  const lines = t.log().split('\n');
  return { opt: lines.filter((l) => l.startsWith('[completed optimizing')).length, deopt: lines.filter((l) => l.startsWith('[bailout')).length };
};
let before = count();
console.log(`before the first batch (start-up and one approved login): ${before.opt} optimised, ${before.deopt} deoptimised`);
for (let b = 0; b < batches; b++) {
  await sequentialLogins(t.port, perBatch);
  const now = count();
  console.log(`logins ${b * perBatch + 1}-${(b + 1) * perBatch}: ${now.opt - before.opt} optimised, ${now.deopt - before.deopt} deoptimised`);
  before = now;
}
await t.stop();
