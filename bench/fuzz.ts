/**
 * The long fuzz run: the properties of the normal suite (test/fuzz/properties.ts) for many more
 * inputs. `npm run fuzz -- --seconds 60` or `-- --runs 100000`; `--seed N` replays a run.
 * Prints runs and failures per property and the heap before and after (after a GC), to show that
 * millions of hostile inputs leave nothing behind. Exits 1 on any failure.
 */
import fc from 'fast-check';
import { fuzzProperties } from '../test/fuzz/properties.js';

function option(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const n = Number(process.argv[i + 1]);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} takes a number`);
    process.exit(2);
  }
  return n;
}

const seconds = option('seconds');
const runs = option('runs') ?? (seconds === undefined ? 10_000 : undefined);
const seed = option('seed') ?? Date.now() % 2 ** 31;
const gc = (globalThis as { gc?: () => void }).gc;

function heapMiB(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const properties = fuzzProperties();
const heapBefore = heapMiB();
const rssBefore = process.memoryUsage().rss / 2 ** 20;
let totalRuns = 0;
let failures = 0;
console.log(`fuzz: seed ${seed}, ${runs !== undefined ? `${runs} runs per property` : `${seconds} s in all`}${gc ? '' : ' (run with --expose-gc for exact heap figures)'}`);
for (const { name, property } of properties) {
  const started = Date.now();
  const details = fc.check(property, {
    seed,
    numRuns: runs ?? Number.MAX_SAFE_INTEGER,
    ...(seconds !== undefined ? { interruptAfterTimeLimit: (seconds * 1000) / properties.length } : {}),
  });
  totalRuns += details.numRuns;
  const took = ((Date.now() - started) / 1000).toFixed(1);
  if (details.failed) {
    failures += 1;
    console.log(`FAIL ${name}: after ${details.numRuns} runs (${took} s)\n${fc.defaultReportMessage(details) ?? ''}`);
  } else {
    console.log(`ok   ${name}: ${details.numRuns} runs, 0 failures (${took} s)`);
  }
}
const heapAfter = heapMiB();
const rssAfter = process.memoryUsage().rss / 2 ** 20;
console.log(
  `fuzz: ${totalRuns} runs over ${properties.length} properties, ${failures} failing; ` +
    `heap ${heapBefore.toFixed(1)} MiB before, ${heapAfter.toFixed(1)} MiB after; rss ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB`,
);
process.exit(failures > 0 ? 1 : 0);
