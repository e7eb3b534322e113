// Who had the cores while a slow login waited? Sequential logins through mailotp (approved path, plain
// upstream) and straight to Dovecot's TLS port, interleaved, under `perf sched record` of the whole
// machine. For each login, from the scheduler's own switch and wake-up events:
//   - the CPU time each group of tasks got inside the login's window (the bench client, mailotp,
//     Dovecot's processes, the kernel's threads, anything else on the machine, idle);
//   - the run-queue wait: time that a task of the login's chain (client, mailotp, Dovecot) spent woken
//     but not running, and which group ran on the cores meanwhile.
// Needs perf (Debian linux-perf) and tracefs (mounted here if it is not). Run as root on a quiet machine.
// mailotp runs without the probes' preload, as the benchmark runs it (the preload's statement timer
// deoptimises and is recompiled over and over, work of its own on V8's threads).
// Usage (after npm run build): node bench/probes/sched-attrib.mjs [LOGINS=400] [WARMUP=200]
// WARMUP: untimed logins first, half through mailotp (V8 keeps optimising mailotp's and Node's code
// for the first few thousand logins, on background threads that compete for the cores).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { login, pct, startTarget } from './probe-kit.mjs';

const [n, warmup] = [400, 200].map((d, i) => Number(process.argv[2 + i] ?? d));
if (readdirSync('/sys/kernel/tracing').length === 0) execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
process.env.PROBE_PRELOAD ??= '0';
const t = await startTarget('mailotp', 100);
const timed = async (port) => {
  const t0 = process.hrtime.bigint();
  const c = await login(port);
  const t1 = process.hrtime.bigint();
  c.sock.write('z LOGOUT\r\n');
  c.close();
  return [t0, t1];
};
for (let i = 0; i < warmup; i++) await timed(i % 2 ? t.port : t.dovecot.ports.imaps);

const data = '/tmp/sched-attrib.data';
rmSync(data, { force: true });
const perf = spawn('perf', ['sched', 'record', '-a', '-k', 'CLOCK_MONOTONIC', '-o', data], { stdio: ['ignore', 'ignore', 'inherit'] });
await new Promise((r) => setTimeout(r, 1500));
const logins = [];
for (let i = 0; i < n; i++) {
  for (const [path, port] of i % 2 ? [['mailotp', t.port], ['direct', t.dovecot.ports.imaps]] : [['direct', t.dovecot.ports.imaps], ['mailotp', t.port]]) {
    const [s, e] = await timed(port);
    logins.push({ path, s, e, ms: Number(e - s) / 1e6 });
  }
}
await new Promise((r) => setTimeout(r, 200));
perf.kill('SIGINT');
await new Promise((r) => perf.on('exit', r));
const mailotpPid = t.pid;
await t.stop();
if (!existsSync(data)) throw new Error('perf wrote nothing');

// --- the scheduler's events ---------------------------------------------------------------
const script = execFileSync('perf', ['script', '-i', data, '--ns', '-F', 'pid,tid,cpu,time,event,trace'], { maxBuffer: 1 << 30, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
const tgid = new Map(); // tid -> pid
const comm = new Map(); // tid -> name
const events = [];
for (const line of script.split('\n')) {
  const m = /^\s*(\d+)\/(\d+)\s+\[(\d+)\]\s+(\d+)\.(\d+):\s+sched:(\w+):\s+(.*)$/.exec(line);
  if (!m) continue;
  const [, pid, tid, cpu, sec, frac, ev, rest] = m;
  tgid.set(Number(tid), Number(pid));
  const at = BigInt(sec) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
  if (ev === 'sched_switch') {
    const sw = /prev_comm=(.*) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+)/.exec(rest);
    if (!sw) continue;
    comm.set(Number(sw[2]), sw[1]);
    comm.set(Number(sw[5]), sw[4]);
    events.push({ ev: 'switch', at, cpu: Number(cpu), prev: Number(sw[2]), prevState: sw[3], next: Number(sw[5]) });
  } else if (ev === 'sched_wakeup' || ev === 'sched_wakeup_new') {
    const wk = /comm=(.*) pid=(\d+) prio=\d+ target_cpu=(\d+)/.exec(rest);
    if (!wk) continue;
    comm.set(Number(wk[2]), wk[1]);
    events.push({ ev: 'wake', at, tid: Number(wk[2]) });
  }
}
events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));

const dovecotNames = /^(dovecot|imap|imap-login|auth|anvil|log|config|stats|pop3-login|submission-login|lmtp)$/;
const group = (tid) => {
  if (tid === 0) return 'idle';
  const p = tgid.get(tid) ?? tid;
  // A Node process's main thread has the process's id; its other threads are V8's (GC, compiler) and libuv's.
  if (p === process.pid) return tid === p ? 'client' : 'client-threads';
  if (p === mailotpPid) return tid === p ? 'mailotp' : 'mailotp-threads';
  const c = comm.get(tid) ?? '';
  if (dovecotNames.test(c)) return 'dovecot';
  if (/^(kworker|ksoftirqd|rcu_|migration|kdamond|kcompactd|khugepaged|jbd2|kswapd)/.test(c)) return 'kernel';
  if (c === 'perf') return 'perf';
  return `other:${c}`;
};
const chain = new Set(['client', 'client-threads', 'mailotp', 'mailotp-threads', 'dovecot']);

// Run intervals per CPU, and wait intervals (woken or preempted, not yet running) per chain task.
const runs = []; // { cpu, tid, s, e }
const waits = []; // { tid, s, e }
const running = new Map(); // cpu -> { tid, s }
const waitingSince = new Map(); // tid -> time
for (const e of events) {
  if (e.ev === 'wake') {
    if (!waitingSince.has(e.tid)) waitingSince.set(e.tid, e.at);
    continue;
  }
  const cur = running.get(e.cpu);
  if (cur) runs.push({ cpu: e.cpu, tid: cur.tid, s: cur.s, e: e.at });
  running.set(e.cpu, { tid: e.next, s: e.at });
  if (e.prevState.startsWith('R') && e.prev !== 0) waitingSince.set(e.prev, e.at); // preempted: still runnable
  const w = waitingSince.get(e.next);
  if (w !== undefined) {
    waits.push({ tid: e.next, s: w, e: e.at });
    waitingSince.delete(e.next);
  }
}
// Per CPU, the runs follow one another: find the one running at a time by bisection.
const byCpu = new Map();
for (const r of runs) (byCpu.get(r.cpu) ?? byCpu.set(r.cpu, []).get(r.cpu)).push(r);
function* runsIn(a, b) {
  for (const list of byCpu.values()) {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].e <= a) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && list[i].s < b; i++) yield list[i];
  }
}

const overlap = (a0, a1, b0, b1) => {
  const s = a0 > b0 ? a0 : b0;
  const e = a1 < b1 ? a1 : b1;
  return e > s ? Number(e - s) / 1e6 : 0;
};
waits.sort((a, b) => (a.s < b.s ? -1 : 1));
const longestWait = waits.reduce((m, w) => (w.e - w.s > m ? w.e - w.s : m), 0n);
function* waitsIn(a, b) {
  let lo = 0;
  let hi = waits.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (waits[mid].s < a - longestWait) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < waits.length && waits[i].s < b; i++) yield waits[i];
}
function attribute(l) {
  const cpuBy = {};
  for (const r of runsIn(l.s, l.e)) {
    const ms = overlap(r.s, r.e, l.s, l.e);
    if (ms > 0) cpuBy[group(r.tid)] = (cpuBy[group(r.tid)] ?? 0) + ms;
  }
  let waitMs = 0;
  const waitBy = {};
  for (const w of waitsIn(l.s, l.e)) {
    if (!chain.has(group(w.tid))) continue;
    const ms = overlap(w.s, w.e, l.s, l.e);
    if (ms <= 0) continue;
    waitMs += ms;
    const ws = w.s > l.s ? w.s : l.s;
    const we = w.e < l.e ? w.e : l.e;
    for (const r of runsIn(ws, we)) {
      const o = overlap(r.s, r.e, ws, we);
      if (o > 0) waitBy[group(r.tid)] = (waitBy[group(r.tid)] ?? 0) + o;
    }
  }
  return { cpuBy, waitMs, waitBy };
}

const fmt = (o) => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
const sum = (objs) => {
  const t = {};
  for (const o of objs) for (const [k, v] of Object.entries(o)) t[k] = (t[k] ?? 0) + v / objs.length;
  return t;
};
for (const path of ['mailotp', 'direct']) {
  const ls = logins.filter((l) => l.path === path);
  const sorted = ls.map((l) => l.ms).sort((a, b) => a - b);
  const p50 = pct(sorted, 50);
  const p99 = pct(sorted, 99);
  console.log(`\n${path}: ${ls.length} logins, p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (${(p99 / p50).toFixed(2)}x)`);
  const a = ls.map((l) => ({ l, ...attribute(l) }));
  const byMs = [...a].sort((x, y) => x.l.ms - y.l.ms);
  const mid = byMs.slice(Math.floor(ls.length * 0.4), Math.ceil(ls.length * 0.6));
  const slow = byMs.slice(Math.floor(ls.length * 0.97));
  for (const [name, set] of [['middle 20%', mid], ['slowest 3%', slow]]) {
    const ms = set.reduce((x, y) => x + y.l.ms, 0) / set.length;
    const wait = set.reduce((x, y) => x + y.waitMs, 0) / set.length;
    console.log(`  ${name} (${set.length}), mean ${ms.toFixed(2)} ms: CPU in the window (ms): ${fmt(sum(set.map((x) => x.cpuBy)))}`);
    console.log(`    the chain's run-queue wait ${wait.toFixed(2)} ms; meanwhile on the cores: ${fmt(sum(set.map((x) => x.waitBy)))}`);
  }
  console.log('  the slowest eight:');
  for (const x of byMs.slice(-8).reverse()) console.log(`    ${x.l.ms.toFixed(2)} ms: CPU ${fmt(x.cpuBy)} | wait ${x.waitMs.toFixed(2)}: ${fmt(x.waitBy)}`);
}
rmSync(data, { force: true });
