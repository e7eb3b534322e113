// Where mailotp spends its CPU on sequential logins: a V8 CPU profile of the daemon (bench/probes/cpu-prof.cjs)
// over LOGINS logins (TLS connect, LOGIN, OK, LOGOUT) after 300 untimed ones, summed by function
// (self time) and by file, top 25 each; and the SQLite statements a login runs (the preload times
// them). The profile file stays for Chrome DevTools.
// Usage (after npm run build): node bench/probes/cpu-profile.mjs [LOGINS=3000] [DIR=/tmp/mailotp-cpu-prof]
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report, sequentialLogins, startTarget } from './probe-kit.mjs';

const logins = Number(process.argv[2] ?? 3000);
const dir = process.argv[3] ?? '/tmp/mailotp-cpu-prof';
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
process.env.CPU_PROF_DIR = dir;
const t = await startTarget('mailotp', 100, `--require ${fileURLToPath(new URL('./cpu-prof.cjs', import.meta.url))}`);
delete process.env.CPU_PROF_DIR;
const run = (n) => sequentialLogins(t.port, n);
await run(300);
await report(t.pid); // resets the preload's counts: the next report covers the timed logins only
const started = process.hrtime.bigint();
await run(logins);
const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
const sql = await report(t.pid);
await t.stop();
const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
if (files.length === 0) throw new Error(`no profile in ${dir}: did the daemon exit cleanly?`);
// The daemon's own profile is the largest one (the CLI wrapper, if any, writes a small one).
const profiles = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
const prof = profiles.sort((a, b) => b.samples.length - a.samples.length)[0];
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
for (let i = 0; i < prof.samples.length; i++) {
  const node = byId.get(prof.samples[i]);
  const dt = (prof.timeDeltas[i] ?? 0) / 1000;
  self.set(node, (self.get(node) ?? 0) + dt);
}
const byFn = new Map();
const byFile = new Map();
let total = 0;
let idle = 0;
for (const [node, ms] of self) {
  const cf = node.callFrame;
  if (cf.functionName === '(idle)') {
    idle += ms;
    continue;
  }
  total += ms;
  const file = cf.url ? cf.url.replace(/^.*node_modules\//, 'npm:').replace(/^.*\/dist\//, 'dist/').replace(/^node:/, 'node:') : `(${cf.functionName || 'native'})`;
  const fn = `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + ms);
  const pkg = file.startsWith('npm:') ? file.split('/').slice(0, file.startsWith('npm:@') ? 2 : 1).join('/') : file;
  byFile.set(pkg, (byFile.get(pkg) ?? 0) + ms);
}
const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 25);
console.log(`${logins} sequential logins in ${(wallMs / 1000).toFixed(1)} s; daemon busy ${(total / 1000).toFixed(1)} s (${(total / logins).toFixed(2)} ms per login, whole profile), idle ${(idle / 1000).toFixed(1)} s`);
console.log('\nself time by function (ms per login):');
for (const [k, ms] of top(byFn)) console.log(`${(ms / logins).toFixed(3).padStart(7)}  ${k}`);
console.log('\nself time by file or package (ms per login):');
for (const [k, ms] of top(byFile)) console.log(`${(ms / logins).toFixed(3).padStart(7)}  ${k}`);
console.log(`\nSQLite statements per login: ${(sql.sqliteCalls / logins).toFixed(1)}, ${(sql.sqliteMs / logins).toFixed(3)} ms (timed by the preload):`);
for (const [k, n] of Object.entries(sql.counts)) console.log(`${(n / logins).toFixed(2).padStart(7)}  ${k}`);
