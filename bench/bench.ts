/**
 * npm run bench: direct-to-Dovecot vs through mailotp (approved path), upstream over TLS and plain.
 * Prints one table; compares with bench/baseline.json side by side when it exists.
 * Also POP3 RETR throughput and SMTP submission messages per second (1 KB and 1 MB).
 * The three paths' logins are timed together: both mailotps are started first, every path gets
 * --warmup untimed logins, then one timed login per path in turn (the first path of each turn
 * rotating), so that a noisy moment of the machine delays a login of every path alike and no path
 * is timed while its process is still cold (V8 compiles mailotp's hot paths over its first logins).
 * 1,000 timed logins per path by default: a p99 of 200 is the second-slowest login, one hiccup of
 * the machine; of 1,000 it is the tenth (docs/benchmarks.md, 2026-12-03 sixth section).
 * Options: --logins N (1000), --warmup N (100 per path), --messages N (40), --size BYTES (1 MiB),
 * --idle N (1000), --save-baseline
 * --scale runs the scale scenario instead (bench/scale.ts: 10,000 sessions, nginx and a bare pipe beside).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { testCerts } from '../test/helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../test/helpers/dovecot.js';
import { decide, enrol, startMailotp, waitForRequest, type MailotpProcess } from '../test/e2e/harness.js';
import { startSmtpSink } from '../test/helpers/smtp-sink.js';
import { pct, RawImap, timeLogin } from './raw-imap.js';
import { pop3RetrThroughput } from './pop3-bench.js';
import { smtpMessagesPerSecond } from './smtp-bench.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const LOGINS = opt('logins', 1000);
const WARMUP = opt('warmup', 100);
const MESSAGES = opt('messages', 40);
const SIZE = opt('size', 1024 * 1024);
const IDLE = opt('idle', 1000);
const USER = 'bench';
const PASS = 'bench-pass-1';

interface LoginPath {
  name: string;
  port: number;
}

/** WARMUP untimed, then LOGINS timed sequential logins per path, one path after the other in turn. */
async function loginLatencies(paths: LoginPath[]): Promise<Record<string, { p50: number; p99: number; times: number[] }>> {
  const times: Record<string, number[]> = Object.fromEntries(paths.map((p) => [p.name, []]));
  for (let i = 0; i < WARMUP + LOGINS; i++) {
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(i + k) % paths.length]!;
      const { greeting, login } = await timeLogin(p.port, USER, PASS);
      if (i >= WARMUP) times[p.name]!.push(greeting + login);
    }
  }
  return Object.fromEntries(
    Object.entries(times).map(([name, xs]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return [name, { p50: pct(sorted, 50), p99: pct(sorted, 99), times: xs }];
    }),
  );
}

async function fetchThroughput(port: number): Promise<number> {
  const c = await RawImap.open(port);
  await c.cmd('a', `LOGIN ${USER} ${PASS}`);
  await c.cmd('b', 'EXAMINE INBOX');
  // Warm Dovecot's cache so both paths read the same way.
  await c.cmd('w', `FETCH 1:${MESSAGES} BODY.PEEK[]`);
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = c.bytes;
    const t0 = process.hrtime.bigint();
    await c.cmd(`f${i}`, `FETCH 1:${MESSAGES} BODY.PEEK[]`);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    runs.push((c.bytes - before) / s / 1e6);
  }
  c.close();
  runs.sort((a, b) => a - b);
  return runs[1]!; // median of three, MB/s
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : NaN;
}

async function idleMemory(m: MailotpProcess): Promise<number> {
  const pid = m.child.pid!;
  const conns: RawImap[] = [];
  // Warm up allocator and JIT with a few sessions before the baseline reading.
  for (let i = 0; i < 20; i++) {
    const c = await RawImap.open(m.imaps);
    await c.cmd('a', `LOGIN ${USER} ${PASS}`);
    conns.push(c);
  }
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssKiB(pid);
  for (let i = 20; i < IDLE; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, IDLE - i) }, async () => {
        const c = await RawImap.open(m.imaps);
        await c.cmd('a', `LOGIN ${USER} ${PASS}`);
        return c;
      }),
    );
    conns.push(...batch);
  }
  await new Promise((r) => setTimeout(r, 2000));
  const after = rssKiB(pid);
  for (const c of conns) c.close();
  return (after - before) / (conns.length - 20);
}

function message(i: number): string {
  const line = `${'x'.repeat(74)}\r\n`;
  const header = `From: bench@example.com\r\nTo: bench@example.com\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.com>\r\n\r\n`;
  return header + line.repeat(Math.ceil((SIZE - header.length) / line.length));
}

async function prepare(dovecot: DovecotHandle, upstreamTls: 'implicit' | 'none'): Promise<MailotpProcess> {
  const m = await startMailotp({ dovecot, upstreamTls, logLevel: 'info', keepStdout: 1 << 16, daemonOtp: { holdTime: '30s' }, limits: { failedLoginsPerUser: 1000, maxConnectionsPerIp: IDLE + 100 } });
  // The approved path: two-factor on, and one tap has opened the window for 127.0.0.1.
  const token = await enrol(m, USER);
  const first = RawImap.open(m.imaps).then((c) => c.cmd('a', `LOGIN ${USER} ${PASS}`).then(() => c.close()));
  const req = await waitForRequest(m.portal, token);
  await decide(m.portal, token, req.id, 'approve');
  await first;
  return m;
}

interface Figures {
  loginP50: number;
  loginP99: number;
  fetchMBs: number;
  pop3MBs: number;
  smtp1kPerS: number;
  smtp1mPerS: number;
}

const SMTP_SMALL = { size: 1024, count: 300 };
const SMTP_LARGE = { size: 1024 * 1024, count: 20 };

async function main(): Promise<void> {
  const sink = await startSmtpSink();
  const dovecot = await startDovecot({ users: [{ user: USER, password: PASS }], maxConnections: IDLE + 100, relayPort: sink.port });
  const ca = testCerts().ca;
  const mailFigures = async (pop3Port: number, smtpPort: number, smtpMode: 'implicit' | 'starttls') => ({
    pop3MBs: await pop3RetrThroughput(pop3Port, USER, PASS, MESSAGES, ca),
    smtp1kPerS: await smtpMessagesPerSecond(smtpPort, USER, PASS, SMTP_SMALL.size, SMTP_SMALL.count, ca, sink, smtpMode),
    smtp1mPerS: await smtpMessagesPerSecond(smtpPort, USER, PASS, SMTP_LARGE.size, SMTP_LARGE.count, ca, sink, smtpMode),
  });
  const results: Record<string, Figures> = {};
  // Every timed login in the order they ran (index i of each path: the same turn), for
  // bench/probes/ratio-spread.mjs.
  let loginTimes: Record<string, number[]> = {};
  let memKiB = NaN;
  const mailotps: MailotpProcess[] = [];
  try {
    process.stderr.write(`appending ${MESSAGES} messages of ${SIZE} bytes...\n`);
    for (let i = 0; i < MESSAGES; i++) await dovecot.appendMessage(USER, message(i));

    process.stderr.write('starting mailotp twice (upstream TLS and plain)...\n');
    const tlsUp = await prepare(dovecot, 'implicit');
    mailotps.push(tlsUp);
    const plainUp = await prepare(dovecot, 'none');
    mailotps.push(plainUp);
    const paths = [
      { name: 'direct', port: dovecot.ports.imaps },
      { name: 'mailotp-tls', port: tlsUp.imaps },
      { name: 'mailotp-plain', port: plainUp.imaps },
    ];
    process.stderr.write(`logins: ${WARMUP} untimed and ${LOGINS} timed per path, the paths in turn...\n`);
    const logins = await loginLatencies(paths);
    loginTimes = Object.fromEntries(Object.entries(logins).map(([name, l]) => [name, l.times.map((t) => Math.round(t * 1000) / 1000)]));

    process.stderr.write('direct...\n');
    results.direct = {
      loginP50: logins.direct!.p50,
      loginP99: logins.direct!.p99,
      fetchMBs: await fetchThroughput(dovecot.ports.imaps),
      // Dovecot has no implicit-TLS submission port here: direct SMTP is STARTTLS on its submission port.
      ...(await mailFigures(dovecot.ports.pop3s, dovecot.ports.submission, 'starttls')),
    };
    for (const [name, m] of [['mailotp-tls', tlsUp], ['mailotp-plain', plainUp]] as const) {
      process.stderr.write(`${name}...\n`);
      results[name] = {
        loginP50: logins[name]!.p50,
        loginP99: logins[name]!.p99,
        fetchMBs: await fetchThroughput(m.imaps),
        ...(await mailFigures(m.pop3s, m.smtps, 'implicit')),
      };
    }
    // A process of its own: one that has just carried the 1 MiB FETCH, RETR and SMTP runs lays the
    // new sessions into the memory those freed, and reads about half the fresh process's figure
    // and the scale run's (docs/benchmarks.md, 2026-12-03 third section).
    process.stderr.write(`idle memory over ${IDLE} connections (a fresh mailotp, plain upstream)...\n`);
    const fresh = await prepare(dovecot, 'none');
    mailotps.push(fresh);
    memKiB = await idleMemory(fresh);
  } finally {
    for (const m of mailotps) await m.stop();
    await dovecot.stop();
    await sink.stop();
  }

  const baselineFile = fileURLToPath(new URL('../../bench/baseline.json', import.meta.url));
  const baseline = existsSync(baselineFile) ? (JSON.parse(readFileSync(baselineFile, 'utf8')) as { results: Record<string, Figures>; memKiB: number }) : null;
  const d = results.direct!;
  const rel = (v: number, base: number) => `${((v / base) * 100).toFixed(0)}%`;
  const rows: string[][] = [
    [
      'path', 'login p50 ms', 'login p99 ms', 'p99/p50', 'p50 vs direct', 'IMAP FETCH MB/s', 'vs direct', 'POP3 RETR MB/s', 'vs direct',
      'SMTP 1KB msg/s', 'vs direct', 'SMTP 1MB msg/s', 'vs direct', ...(baseline ? ['baseline p50', 'baseline FETCH'] : []),
    ],
  ];
  for (const [name, f] of Object.entries(results)) {
    const b = baseline?.results[name];
    rows.push([
      name,
      f.loginP50.toFixed(2),
      f.loginP99.toFixed(2),
      `${(f.loginP99 / f.loginP50).toFixed(2)}x`,
      `${(f.loginP50 / d.loginP50).toFixed(2)}x`,
      f.fetchMBs.toFixed(1),
      rel(f.fetchMBs, d.fetchMBs),
      f.pop3MBs.toFixed(1),
      rel(f.pop3MBs, d.pop3MBs),
      f.smtp1kPerS.toFixed(0),
      rel(f.smtp1kPerS, d.smtp1kPerS),
      f.smtp1mPerS.toFixed(1),
      rel(f.smtp1mPerS, d.smtp1mPerS),
      ...(baseline ? [b ? b.loginP50.toFixed(2) : '-', b ? b.fetchMBs.toFixed(1) : '-'] : []),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
  table.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  const plain = results['mailotp-plain']!;
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
  const lines = [
    `machine: ${machine}`,
    `logins: ${LOGINS} sequential per path (TLS connect + LOGIN), the paths in turn after ${WARMUP} untimed each, FETCH: ${MESSAGES} x ${SIZE} bytes BODY.PEEK[] (median of 3), RETR: the same messages one by one (median of 3), SMTP: ${SMTP_SMALL.count} x 1 KB and ${SMTP_LARGE.count} x 1 MB in one session until the relay sink has them`,
    ...table,
    `memory per idle authenticated connection (a fresh mailotp's RSS delta / ${IDLE - 20} connections): ${memKiB.toFixed(1)} KiB${baseline ? ` (baseline ${baseline.memKiB.toFixed(1)} KiB)` : ''}`,
    `targets (plain upstream): POP3 RETR >= 90%: ${plain.pop3MBs / d.pop3MBs >= 0.9 ? 'met' : 'NOT met'}; SMTP 1 KB >= 90%: ${plain.smtp1kPerS / d.smtp1kPerS >= 0.9 ? 'met' : 'NOT met'}; SMTP 1 MB >= 90%: ${plain.smtp1mPerS / d.smtp1mPerS >= 0.9 ? 'met' : 'NOT met'}`,
    `targets: FETCH >= 90% of direct: ${plain.fetchMBs / d.fetchMBs >= 0.9 ? 'met' : 'NOT met'}; login p50 <= 1.3x direct (plain upstream): ${plain.loginP50 / d.loginP50 <= 1.3 ? 'met' : 'NOT met'}; login p99 <= 2x p50 (plain upstream): ${plain.loginP99 / plain.loginP50 <= 2 ? 'met' : 'NOT met'}; <= 40 KiB per idle connection: ${memKiB <= 40 ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const doc = { date: new Date().toISOString(), machine, results, memKiB, loginTimes };
  writeFileSync(fileURLToPath(new URL('../../bench/last-run.json', import.meta.url)), JSON.stringify(doc, null, 2));
  if (args.includes('--save-baseline')) writeFileSync(baselineFile, JSON.stringify(doc, null, 2));
}

const run = args.includes('--scale') ? () => import('./scale.js').then((m) => m.scaleBench()) : main;
run().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
