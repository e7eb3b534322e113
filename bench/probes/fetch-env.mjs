// Bulk FETCH through two mailotp instances on one Dovecot, one started with an extra environment
// setting (e.g. MALLOC_MMAP_THRESHOLD_=65536), rounds interleaved: MB/s and mailotp CPU ms per MB.
// Usage (after npm run build): node bench/probes/fetch-env.mjs NAME=VALUE [ROUNDS=8]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
const { startDovecot } = await import(`${dist}test/helpers/dovecot.js`);
const { startMailotp, enrol, waitForRequest, decide } = await import(`${dist}test/e2e/harness.js`);
const { RawImap, pct } = await import(`${dist}bench/raw-imap.js`);

const [name, value] = (process.argv[2] ?? 'MALLOC_MMAP_THRESHOLD_=65536').split('=');
const rounds = Number(process.argv[3] ?? 8);
const MESSAGES = 40;
const SIZE = 1024 * 1024;
const dovecot = await startDovecot({ users: [{ user: 'bench', password: 'bench-pass-1' }] });
const line = `${'x'.repeat(74)}\r\n`;
for (let i = 0; i < MESSAGES; i++) {
  const header = `From: bench@example.com\r\nTo: bench@example.com\r\nSubject: bench ${i}\r\n\r\n`;
  await dovecot.appendMessage('bench', header + line.repeat(Math.ceil((SIZE - header.length) / line.length)));
}
const login = async (port) => {
  const c = await RawImap.open(port);
  await c.cmd('a', 'LOGIN bench bench-pass-1');
  return c;
};
async function start(env) {
  if (env) process.env[name] = value;
  try {
    const m = await startMailotp({ dovecot, upstreamTls: 'none', logLevel: 'info', daemonOtp: { holdTime: '30s' } });
    const token = await enrol(m, 'bench');
    const first = login(m.imaps).then((c) => c.close());
    const req = await waitForRequest(m.portal, token);
    await decide(m.portal, token, req.id, 'approve');
    await first;
    return m;
  } finally {
    delete process.env[name];
  }
}
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
};
const targets = [
  { label: 'default', m: await start(false), mbs: [], cpu: [] },
  { label: `${name}=${value}`, m: await start(true), mbs: [], cpu: [] },
];
for (let r = 0; r < rounds; r++) {
  for (const t of r % 2 ? [...targets].reverse() : targets) {
    const c = await login(t.m.imaps);
    await c.cmd('b', 'EXAMINE INBOX');
    await c.cmd('w', `FETCH 1:${MESSAGES} BODY.PEEK[]`);
    const before = c.bytes;
    const c0 = cpuMs(t.m.child.pid);
    const t0 = process.hrtime.bigint();
    await c.cmd('f', `FETCH 1:${MESSAGES} BODY.PEEK[]`);
    const mb = (c.bytes - before) / 1e6;
    t.mbs.push(mb / (Number(process.hrtime.bigint() - t0) / 1e9));
    t.cpu.push((cpuMs(t.m.child.pid) - c0) / mb);
    c.close();
  }
}
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
for (const t of targets) {
  console.log(`${t.label}: FETCH median ${pct([...t.mbs].sort((a, b) => a - b), 50).toFixed(0)} MB/s, mailotp CPU median ${pct([...t.cpu].sort((a, b) => a - b), 50).toFixed(2)} ms/MB [${t.cpu.map((x) => x.toFixed(1)).join(" ")}] (${rounds} rounds; load ${load})`);
  await t.m.stop();
}
await dovecot.stop();
