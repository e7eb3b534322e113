// What the proxy process mallocs per idle logged-in session: live chunks by size, and every
// allocation made while the sessions were opened (freed or not), through an LD_PRELOAD shim
// (malloc-census.c, compiled here with gcc). Transient big allocations are what dirty the heap
// that the sessions' long-lived 64 KiB TLS buffers are carved from later.
// Usage (after npm run build): node bench/probes/malloc-census.mjs mailotp|pipe [SESSIONS=2000]
// MC_TRACE=SIZE adds the native stacks of a few allocations of that size (bin of 16 bytes).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { login, startTarget } from './probe-kit.mjs';

const which = process.argv[2] ?? 'mailotp';
const n = Number(process.argv[3] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'malloc-census-'));
const so = join(dir, 'malloc-census.so');
execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', so, fileURLToPath(new URL('./malloc-census.c', import.meta.url))]);
process.env.PROBE_CHILD_ENV = `LD_PRELOAD=${so} MC_DIR=${dir}${process.env.MC_TRACE ? ` MC_TRACE=${process.env.MC_TRACE}` : ''}`;
const t = await startTarget(which, n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function dump() {
  const seen = new Set(readdirSync(dir));
  process.kill(t.pid, 'SIGUSR2');
  let f;
  while (!(f = readdirSync(dir).find((x) => x.startsWith('dump-') && !seen.has(x)))) await sleep(100);
  await sleep(500);
  return new Map(readFileSync(join(dir, f), 'utf8').trim().split('\n').map((l) => l.split(' ').map(Number)).map(([s, live, total]) => [s, { live, total }]));
}
const conns = [];
for (let i = 0; i < 20; i++) conns.push(await login(t.port));
await sleep(1000);
const a = await dump();
await sleep(1100);
while (conns.length < n + 20) conns.push(...(await Promise.all(Array.from({ length: 50 }, () => login(t.port)))));
await sleep(2000);
const b = await dump();
const rows = [...b].map(([s, v]) => ({ s, live: (v.live - (a.get(s)?.live ?? 0)) / n, total: (v.total - (a.get(s)?.total ?? 0)) / n }));
const kib = (x) => (x / 1024).toFixed(1);
const liveRows = rows.filter((r) => r.live !== 0).sort((x, y) => y.live * y.s - x.live * x.s);
console.log(`${which}, ${n} sessions: live malloc growth ${kib(liveRows.reduce((x, r) => x + r.live * r.s, 0))} KiB per session; largest (size: chunks, KiB per session):`);
for (const r of liveRows.slice(0, 6)) console.log(`  ${String(r.s).padStart(7)}: ${r.live.toFixed(2).padStart(6)}  ${kib(r.live * r.s).padStart(6)}`);
const made = rows.filter((r) => r.total > 0).sort((x, y) => y.total * y.s - x.total * x.s);
console.log(`allocations made per session (freed or not): ${made.reduce((x, r) => x + r.total, 0).toFixed(0)} calls, ${kib(made.reduce((x, r) => x + r.total * r.s, 0))} KiB; largest:`);
for (const r of made.slice(0, 10)) console.log(`  ${String(r.s).padStart(7)}: ${r.total.toFixed(2).padStart(7)}  ${kib(r.total * r.s).padStart(6)}`);
for (const c of conns) c.close();
await t.stop();
for (const f of readdirSync(dir).filter((x) => x.startsWith('bt-'))) {
  console.log(`native stacks of ${process.env.MC_TRACE}-byte allocations: ${join(dir, f)} (kept; c++filt < FILE)`);
}
if (!process.env.MC_TRACE) rmSync(dir, { recursive: true, force: true });
