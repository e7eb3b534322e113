// Loaded into a mailotp (or the bare pipe) child with NODE_OPTIONS=--require by the probes beside it.
// SIGWINCH writes probe-<pid>.json into the working directory: memory before and after a forced GC
// (with --expose-gc), event-loop delay since the last signal, and time spent in better-sqlite3
// statements (which run synchronously on the event loop), with the statements that took over 2 ms.
'use strict';
const fs = require('node:fs');
const v8 = require('node:v8');
const path = require('node:path');
const { monitorEventLoopDelay, createHistogram, performance } = require('node:perf_hooks');

const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const sqlite = createHistogram();
let sqliteMs = 0;
let sqliteCalls = 0;
let slow = {};
// Statements run per source text (first 60 characters), to count what one login costs.
let counts = {};
try {
  const Database = require(path.join(__dirname, '../../node_modules/better-sqlite3'));
  const proto = Object.getPrototypeOf(new Database(':memory:').prepare('select 1'));
  for (const m of ['run', 'get', 'all']) {
    const orig = proto[m];
    proto[m] = function timed(...a) {
      // Doubles, not hrtime.bigint(): BigInt arithmetic here deoptimised the wrapper at every call
      // site again and again, compiler work in the measured process (bench/probes/jit-settle.mjs).
      const t = performance.now();
      try {
        return orig.apply(this, a);
      } finally {
        const d = performance.now() - t;
        sqliteMs += d;
        sqliteCalls++;
        const key = this.source.replace(/\s+/g, ' ').slice(0, 60);
        counts[key] = (counts[key] ?? 0) + 1;
        sqlite.record(Math.max(1, Math.round(d * 1e6)));
        if (d > 2) slow[this.source.slice(0, 80)] = (slow[this.source.slice(0, 80)] ?? 0) + 1;
      }
    };
  }
} catch {
  // Not a mailotp process (the bare pipe): no SQLite to time.
}

// PROBE_EVENTS=1: every GC pause and every event-loop stall over 3 ms, with its wall-clock time,
// so a probe can tell which slow logins overlapped one (bench/probes/tail-attrib.mjs).
let events = [];
if (process.env.PROBE_EVENTS === '1') {
  const { PerformanceObserver } = require('node:perf_hooks');
  const kinds = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental', 8: 'weak-cb', 16: 'minor-mc' };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      events.push({ at: performance.timeOrigin + e.startTime, ms: e.duration, what: `gc ${kinds[e.detail?.kind] ?? e.detail?.kind}` });
    }
  }).observe({ entryTypes: ['gc'] });
  let expected = Date.now() + 1;
  require('node:timers').setInterval(() => {
    const now = Date.now();
    if (now - expected > 3) events.push({ at: expected, ms: now - expected, what: 'loop stall' });
    expected = now + 1;
  }, 1).unref();
}

process.on('SIGWINCH', () => {
  const before = process.memoryUsage();
  global.gc?.();
  setTimeout(() => {
    global.gc?.();
    const out = {
      before,
      after: process.memoryUsage(),
      spaces: Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size }])),
      loopP50Ms: loop.percentile(50) / 1e6,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
      sqliteCalls,
      sqliteMs,
      sqliteP99Ms: sqlite.percentile(99) / 1e6,
      sqliteMaxMs: sqlite.max / 1e6,
      slow,
      counts,
      events,
    };
    events = [];
    loop.reset();
    sqlite.reset();
    sqliteMs = 0;
    sqliteCalls = 0;
    slow = {};
    counts = {};
    fs.writeFileSync(`probe-${process.pid}.json`, JSON.stringify(out));
  }, 200);
});
