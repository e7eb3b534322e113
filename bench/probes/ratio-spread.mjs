// How far a run's login p99/p50 moves by sampling alone, and whether the slowest logins are the
// machine's or one path's. The logins of a run (bench/last-run.json from `npm run bench`, or
// bench/last-scale-run.json from the scale rounds: every path's timed sequential logins, index i of
// each path in the same turn) are drawn again with replacement, as many as one run times (200: the
// default run before 2026-12-03, sixth section; 800: the scale rounds; 1,000: the default run now),
// DRAWS times with a fixed seed. Per target:
// the run's own ratio, the 5th, 50th and 95th percentile of the drawn ratios, and the share of draws
// over 2x: how often a run of that size would read over #12's 2x if the machine behaved exactly as
// it did during that run. Second table: of each path's slowest 1% logins, how many fell in a turn
// (or the turn before or after) where another path had one of its slowest 10%, against the same
// share for all of the path's logins: a slow moment of the machine slows every path of the turn.
// Usage (after npm run build and `npm run bench`, or `npm run bench -- --scale [--only rounds]`):
//   node bench/probes/ratio-spread.mjs [FILE=bench/last-run.json] [SIZES=200,800,1000] [DRAWS=2000]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('../../', import.meta.url));
const { pct } = await import(`${here}dist/bench/raw-imap.js`);
const { seededRandom } = await import(`${here}dist/bench/sampling.js`);

const file = process.argv[2] ?? `${here}bench/last-run.json`;
const sizes = (process.argv[3] ?? '200,800,1000').split(',').map(Number);
const draws = Number(process.argv[4] ?? 2000);
const run = JSON.parse(readFileSync(file, 'utf8'));
/** path -> its timed logins in turn order: the default run's loginTimes, the scale run's rounds. */
const paths = run.loginTimes ?? (run.rounds && Object.fromEntries(Object.entries(run.rounds).map(([name, f]) => [name, f.login])));
if (!paths) {
  console.error(`${file}: no login times in it (a default run before 2026-12-03, sixth section, kept none); run npm run bench again`);
  process.exit(2);
}
const ratio = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return pct(sorted, 99) / pct(sorted, 50);
};

console.log(`${file}: ${run.date}, ${run.machine}${run.loginOrder ? `, login order ${run.loginOrder}` : ''}; ${draws} draws per size`);
console.log('| path | logins | run p99/p50 | draws of | p5 | p50 | p95 | over 2x |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [name, logins] of Object.entries(paths)) {
  for (const size of sizes) {
    const random = seededRandom(size);
    const ratios = [];
    for (let d = 0; d < draws; d++) ratios.push(ratio(Array.from({ length: size }, () => logins[Math.floor(random() * logins.length)])));
    ratios.sort((a, b) => a - b);
    const over = ratios.filter((r) => r > 2).length / draws;
    const cells = [5, 50, 95].map((p) => `${pct(ratios, p).toFixed(2)}x`);
    console.log(`| ${name} | ${logins.length} | ${ratio(logins).toFixed(2)}x | ${size} | ${cells.join(' | ')} | ${(over * 100).toFixed(0)}% |`);
  }
}

/** Indices of the slowest `share` of xs. */
const slowest = (xs, share) => {
  const cut = [...xs].sort((a, b) => b - a)[Math.max(0, Math.ceil(xs.length * share) - 1)];
  return new Set(xs.flatMap((x, i) => (x >= cut ? [i] : [])));
};
const slow10 = Object.fromEntries(Object.entries(paths).map(([name, xs]) => [name, slowest(xs, 0.1)]));
const nearOtherSlow = (name, i) =>
  Object.entries(slow10).some(([other, set]) => other !== name && (set.has(i - 1) || set.has(i) || set.has(i + 1)));
console.log('');
if (run.loginOrder === 'turns') {
  console.log('(--login-order turns: each target took its logins back to back, so index i is not the same moment for all; no turn table)');
  process.exit(0);
}
console.log("| path | slowest 1%: logins | of them in a turn (+-1) with another path's slowest 10% | all logins: the same share |");
console.log('|---|---|---|---|');
for (const [name, logins] of Object.entries(paths)) {
  const worst = [...slowest(logins, 0.01)];
  const near = worst.filter((i) => nearOtherSlow(name, i)).length;
  const all = logins.filter((_, i) => nearOtherSlow(name, i)).length / logins.length;
  console.log(`| ${name} | ${worst.length} | ${near} (${((near / worst.length) * 100).toFixed(0)}%) | ${(all * 100).toFixed(0)}% |`);
}
