// Per idle logged-in session: RSS growth, and JS heap / external memory after a forced GC.
// Usage (after npm run build): node bench/probes/session-memory.mjs mailotp|pipe [SESSIONS=1000]
// PROBE_DETAIL=1 adds where the RSS lives (smaps: brk heap, glibc arenas, other anonymous, files),
// V8's heap spaces, RSS after the forced GC and, with gdb installed, after glibc's malloc_trim(0).
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { RawImap, login as loginKit, report, rssKiB, startTarget } from './probe-kit.mjs';
import { arenaKiB, smapsKiB } from './smaps.mjs';

// PROBE_NOLOGIN=1: sessions that are connected and greeted but never log in (the pre-login state).
const login = process.env.PROBE_NOLOGIN === '1' ? (port) => RawImap.open(port) : loginKit;

const which = process.argv[2] ?? 'mailotp';
const n = Number(process.argv[3] ?? 1000);
const detail = process.env.PROBE_DETAIL === '1';
const t = await startTarget(which, n);
const conns = [];
for (let i = 0; i < 20; i++) conns.push(await login(t.port));
await new Promise((r) => setTimeout(r, 1000));
const r0 = rssKiB(t.pid);
const s0 = detail ? { ...smapsKiB(t.pid), ...arenaKiB(t.pid) } : undefined;
const m0 = await report(t.pid);
const g0 = rssKiB(t.pid);
while (conns.length < n + 20) conns.push(...(await Promise.all(Array.from({ length: 50 }, () => login(t.port)))));
await new Promise((r) => setTimeout(r, 2000));
const r1 = rssKiB(t.pid);
const s1 = detail ? { ...smapsKiB(t.pid), ...arenaKiB(t.pid) } : undefined;
const m1 = await report(t.pid);
const g1 = rssKiB(t.pid);
const per = (a, b) => ((a - b) / 1024 / n).toFixed(1);
console.log(
  `${which}: ${n} sessions; RSS ${((r1 - r0) / n).toFixed(1)} KiB/session; after GC: heap used ${per(m1.after.heapUsed, m0.after.heapUsed)}, ` +
    `external ${per(m1.after.external, m0.after.external)} KiB/session; load ${readLoad()}`,
);
if (detail) {
  const kib = (a, b) => ((a - b) / n).toFixed(1);
  console.log(`  RSS total ${r1} KiB; after forced GC: ${kib(g1, g0)} KiB/session (RSS ${g1})`);
  console.log(`  smaps growth KiB/session: ${Object.keys(s1).map((k) => `${k} ${k === 'arenaCount' ? `${s0[k]}->${s1[k]}` : kib(s1[k], s0[k])}`).join(', ')}`);
  console.log(`  memoryUsage before GC: ${Object.entries(m1.before).map(([k, v]) => `${k} ${(v / 1048576).toFixed(1)}M`).join(', ')}`);
  console.log(`  memoryUsage after GC:  ${Object.entries(m1.after).map(([k, v]) => `${k} ${(v / 1048576).toFixed(1)}M`).join(', ')}`);
  console.log(`  V8 spaces after GC (size/used/physical MiB): ${Object.entries(m1.spaces ?? {}).map(([k, v]) => `${k} ${(v.size / 1048576).toFixed(1)}/${(v.used / 1048576).toFixed(1)}/${(v.physical / 1048576).toFixed(1)}`).join(', ')}`);
  console.log(`  glibc malloc (all arenas) at the end: ${mallocInfo(t.pid)}`);
  try {
    execFileSync('gdb', ['-p', String(t.pid), '-batch', '-ex', 'call (int) malloc_trim(0)'], { stdio: 'pipe', timeout: 60_000 });
    const t1 = rssKiB(t.pid);
    console.log(`  after malloc_trim(0): RSS ${t1} KiB, ${kib(t1, g0)} KiB/session over the 20-session GC'd start`);
  } catch (e) {
    console.log(`  malloc_trim via gdb failed: ${String(e.message).split('\n')[0]}`);
  }
}
for (const c of conns) c.close();
await t.stop();

function readLoad() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** glibc's malloc_info(), written by the process itself through gdb: bytes the heap holds, and of them free. */
function mallocInfoRaw(pid) {
  const f = `/tmp/malloc-info-${pid}-${Date.now()}.xml`;
  try {
    execFileSync('gdb', ['-p', String(pid), '-batch', '-ex', `set $f = (void *) fopen("${f}", "w")`, '-ex', 'call (int) malloc_info(0, $f)', '-ex', 'call (int) fclose($f)'], { stdio: 'pipe', timeout: 60_000 });
    const xml = readFileSync(f, 'utf8');
    rmSync(f, { force: true });
    const tail = xml.slice(xml.lastIndexOf('</heap>'));
    const num = (re) => Number(re.exec(tail)?.[1] ?? NaN);
    const free = num(/<total type="fast" count="\d+" size="(\d+)"/) + num(/<total type="rest" count="\d+" size="(\d+)"/);
    const system = num(/<system type="current" size="(\d+)"/);
    return { free, system, inUse: system - free };
  } catch (e) {
    return { error: String(e.message).split('\n')[0] };
  }
}
function mallocInfo(pid) {
  const i = mallocInfoRaw(pid);
  if (i.error) return `unavailable (${i.error})`;
  const s = (v) => `${(v / 1048576).toFixed(1)} MiB`;
  return `held ${s(i.system)}, in use ${s(i.inUse)}, free inside ${s(i.free)}`;
}
