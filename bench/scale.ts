/**
 * npm run bench -- --scale: mailotp at scale, beside the bare Node TLS pipe and the nginx mail proxy
 * on the same machine, client and plain Dovecot upstream (issue #12 part 6).
 * - login latency (sequential TLS connect + LOGIN until OK), bulk FETCH and logins per second with
 *   --parallel clients, in --rounds rounds whose target order rotates, so machine noise hits all alike;
 *   within a round the sequential logins go to the targets in turn, one login each, so that a noisy
 *   moment of the machine lands on every target's logins, not on one target's whole turn; a plain
 *   login at Dovecot (the upstream leg inside every proxied login) takes part in the logins only;
 *   each login is also split into connect-to-greeting and LOGIN-to-OK;
 * - tap-to-OK latency with two mailotp instances on one Redis (tap on B releases a login held on A);
 * - RSS per idle logged-in session at --sessions sessions for the pipe, nginx and mailotp.
 * Options: --sessions N (10000), --rounds N (8), --warmup N (1 untimed round first), --logins N (100 per
 * round and target), --parallel N (50), --seconds S (3 per round and target), --settle MS (2000, pause
 * before the sequential logins and before each target's FETCH and burst), --login-order
 * shuffled|interleaved|turns (shuffled: one login per target in turn, the order of each turn drawn
 * afresh, so that no target always follows the same one; interleaved: the same order every turn, as
 * before 2026-12-03 (fifth section); turns: each target's logins back to back, as before 2026-12-02),
 * --taps N (40), --messages N (40), --size BYTES (1 MiB), --only LIST (comma-separated parts:
 * rounds,taps,memory), --variant "NODE OPTIONS" (rounds: one more SQLite mailotp started with these
 * Node/V8 options, e.g. "--single-threaded-gc", as a target of its own beside the default one).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { testCerts } from '../test/helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../test/helpers/dovecot.js';
import { startRedisServer } from '../test/helpers/redis-server.js';
import { decide, enrol, startMailotp, waitForRequest, type MailotpProcess } from '../test/e2e/harness.js';
import { pct, RawImap, timeLogin } from './raw-imap.js';
import { seededRandom, shuffle } from './sampling.js';
import { rssKiB, startNginxMail, startTlsPipe } from './scale-targets.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
let SESSIONS = opt('sessions', 10_000);
const ROUNDS = opt('rounds', 8);
// Untimed rounds before the timed ones, every target alike: a process's first few hundred logins
// run before V8 has compiled its hot paths (mailotp, the pipe) or before Dovecot and nginx have
// started their worker processes; that is start-up, not the steady state the rounds measure.
const WARMUP = opt('warmup', 1);
// 100 per round: over 8 rounds the p99 is the 8th-slowest of 800 logins, not the 2nd of 200.
const LOGINS = opt('logins', 100);
const PARALLEL = opt('parallel', 50);
const SECONDS = opt('seconds', 3);
// Pause before a target's sequential logins, so that they do not time the previous target's
// burst of parallel logins winding down (Dovecot ending 750 sessions, the client's garbage).
const SETTLE_MS = opt('settle', 2000);
const orderAt = args.indexOf('--login-order');
const LOGIN_ORDER = orderAt >= 0 ? (args[orderAt + 1] ?? '') : 'shuffled';
if (LOGIN_ORDER !== 'interleaved' && LOGIN_ORDER !== 'shuffled' && LOGIN_ORDER !== 'turns') throw new Error(`--login-order: interleaved, shuffled or turns, not ${LOGIN_ORDER}`);
const TAPS = opt('taps', 40);
const MESSAGES = opt('messages', 40);
const SIZE = opt('size', 1024 * 1024);
const onlyAt = args.indexOf('--only');
const PARTS = new Set(onlyAt >= 0 ? (args[onlyAt + 1] ?? '').split(',') : ['rounds', 'taps', 'memory']);
const variantAt = args.indexOf('--variant');
const VARIANT = variantAt >= 0 ? (args[variantAt + 1] ?? '').split(' ').filter(Boolean) : [];
const USER = 'bench';
const PASS = 'bench-pass-1';

const log = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Every proxy holds two sockets per session; the client and Dovecot fewer. Raises this process's
 * open-files limit (every server started below inherits it) with prlimit, which needs root with
 * CAP_SYS_RESOURCE to go past the hard limit. When the hard limit cannot move, the session count
 * is lowered to what fits and the note says so.
 */
function raiseFileLimit(sessions: number): { sessions: number; note: string } {
  const need = 2 * sessions + 200;
  const read = () => {
    const m = /Max open files\s+(\d+)\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0)] as const;
  };
  const [soft, hard] = read();
  if (soft >= need) return { sessions, note: `open files: ${soft} per process (needed ${need})` };
  const target = Math.max(need, hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${target}`], { stdio: 'pipe' });
    return { sessions, note: `open files: raised from ${soft}/${hard} to ${target} per process with prlimit` };
  } catch {
    // Without CAP_SYS_RESOURCE (containers) only the soft limit can move, up to the hard one.
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'pipe' });
    const fit = Math.floor((hard - 200) / 2 / 100) * 100;
    return {
      sessions: Math.min(sessions, fit),
      note: `open files: hard limit ${hard} per process cannot be raised here (prlimit: no CAP_SYS_RESOURCE); ${sessions} sessions need ${need}, so ${Math.min(sessions, fit)} sessions were opened`,
    };
  }
}

function message(i: number): string {
  const line = `${'x'.repeat(74)}\r\n`;
  const header = `From: bench@example.com\r\nTo: bench@example.com\r\nSubject: bench ${i}\r\nMessage-ID: <bench-${i}@example.com>\r\n\r\n`;
  return header + line.repeat(Math.ceil((SIZE - header.length) / line.length));
}

async function login(port: number, localAddress?: string): Promise<RawImap> {
  const c = await RawImap.open(port, localAddress);
  await c.cmd('a', `LOGIN ${USER} ${PASS}`);
  return c;
}

/** A target of the rounds; `plain` ones (the upstream leg) take only the sequential logins. */
interface RoundTarget {
  name: string;
  port: number;
  plain?: boolean;
}

/** One FETCH of every message on a fresh session (after a warm-up FETCH), MB/s received. */
async function fetchOnce(port: number): Promise<number> {
  const c = await login(port);
  try {
    await c.cmd('b', 'EXAMINE INBOX');
    await c.cmd('w', `FETCH 1:${MESSAGES} BODY.PEEK[]`);
    const before = c.bytes;
    const t0 = process.hrtime.bigint();
    await c.cmd('f', `FETCH 1:${MESSAGES} BODY.PEEK[]`);
    return (c.bytes - before) / (Number(process.hrtime.bigint() - t0) / 1e9) / 1e6;
  } finally {
    c.close();
  }
}

/** Logins completed per second by PARALLEL clients, each looping connect + LOGIN + close. */
async function loginsPerSecond(port: number): Promise<number> {
  const end = Date.now() + SECONDS * 1000;
  let done = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (Date.now() < end) {
        const c = await login(port);
        done++;
        c.sock.write('z LOGOUT\r\n');
        c.close();
      }
    }),
  );
  return done / (Number(process.hrtime.bigint() - t0) / 1e9);
}

interface RoundFigures {
  /** Connect to the LOGIN's OK, ms. */
  login: number[];
  /** Of which: connect (and TLS handshake) to the greeting, and greeting to OK. */
  toGreeting: number[];
  greetingToOk: number[];
  /** How long the login just before each one took, ms (null: the first after a pause). */
  afterMs: (number | null)[];
  fetch: number[];
  perSecond: number[];
}

const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
/** p50, p99 and their ratio of sorted login times, as table cells. */
const spread = (sorted: number[]) => [pct(sorted, 50).toFixed(1), pct(sorted, 99).toFixed(1), `${(pct(sorted, 99) / pct(sorted, 50)).toFixed(2)}x`];

/** The interleaved rounds: each round visits every target, starting one further along each time. */
async function rounds(targets: RoundTarget[], count: number, what = 'round'): Promise<Record<string, RoundFigures>> {
  const out: Record<string, RoundFigures> = Object.fromEntries(
    targets.map((t) => [t.name, { login: [], toGreeting: [], greetingToOk: [], afterMs: [], fetch: [], perSecond: [] }]),
  );
  let previous: number | null = null;
  const timeInRound = async (t: RoundTarget) => {
    const f = out[t.name]!;
    const { greeting, login } = await timeLogin(t.port, USER, PASS, { plain: t.plain === true });
    f.login.push(greeting + login);
    f.toGreeting.push(greeting);
    f.greetingToOk.push(login);
    f.afterMs.push(previous);
    previous = greeting + login;
  };
  // Seeded: every run with the same --rounds draws the same orders.
  const random = seededRandom(count);
  for (let r = 0; r < count; r++) {
    const order = targets.map((_, i) => targets[(i + r) % targets.length]!);
    log(`${what} ${r + 1}/${count}: ${order.map((t) => t.name).join(', ')}`);
    if (LOGIN_ORDER !== 'turns') {
      // One login per target in turn: a moment of machine noise (another VM on the host, a
      // daemon waking) delays a few logins of every target instead of filling one target's p99.
      // shuffled: the turn's order is drawn afresh each time, so that no target always follows
      // the same one (after the pipe's and nginx's ~40 ms wait for a delayed ACK the cores sat idle).
      await sleep(SETTLE_MS);
      previous = null;
      for (let i = 0; i < LOGINS; i++) for (const t of LOGIN_ORDER === 'shuffled' ? shuffle(order, random) : order) await timeInRound(t);
    }
    for (const t of order) {
      if (t.plain && LOGIN_ORDER !== 'turns') continue;
      await sleep(SETTLE_MS);
      previous = null;
      if (LOGIN_ORDER === 'turns') for (let i = 0; i < LOGINS; i++) await timeInRound(t);
      if (t.plain) continue;
      const f = out[t.name]!;
      f.fetch.push(await fetchOnce(t.port));
      f.perSecond.push(await loginsPerSecond(t.port));
    }
  }
  return out;
}

/** The device's event stream on one instance: resolves waiters when a request for their client IP shows up. */
function requestStream(port: number, token: string): { next(ip: string): Promise<{ id: string }>; close(): void } {
  const waiters = new Map<string, (r: { id: string }) => void>();
  let buf = '';
  const req = https.request({ host: '127.0.0.1', port, path: '/api/v1/device/events', ca: testCerts().ca, servername: 'localhost', headers: { authorization: `Bearer ${token}` } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!/^event: request$/m.test(block)) continue;
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!data) continue;
        const r = JSON.parse(data) as { id: string; clientIp: string };
        waiters.get(r.clientIp)?.(r);
        waiters.delete(r.clientIp);
      }
    });
  });
  req.on('error', () => undefined);
  req.end();
  return {
    next: (ip) => new Promise((resolve) => waiters.set(ip, resolve)),
    close: () => req.destroy(),
  };
}

interface TapFigures {
  loginToRequest: number[];
  tapToOk: number[];
}

/** Each login comes from a fresh loopback address, so each needs its own tap. */
async function taps(a: MailotpProcess, b: MailotpProcess, token: string): Promise<TapFigures> {
  const stream = requestStream(b.portal, token);
  const out: TapFigures = { loginToRequest: [], tapToOk: [] };
  try {
    await sleep(500);
    for (let i = 0; i < TAPS; i++) {
      const ip = `127.31.${Math.floor(i / 250)}.${(i % 250) + 1}`;
      const seen = stream.next(ip);
      const c = await RawImap.open(a.imaps, ip);
      const t0 = process.hrtime.bigint();
      const ok = c.cmd('a', `LOGIN ${USER} ${PASS}`);
      const r = await seen;
      const t1 = process.hrtime.bigint();
      const d = await decide(b.portal, token, r.id, 'approve');
      if (d.status !== 200) throw new Error(`tap refused: ${JSON.stringify(d.json)}`);
      await ok;
      const t2 = process.hrtime.bigint();
      out.loginToRequest.push(Number(t1 - t0) / 1e6);
      out.tapToOk.push(Number(t2 - t1) / 1e6);
      c.close();
    }
  } finally {
    stream.close();
  }
  return out;
}

interface MemoryFigures {
  sessions: number;
  kibPerSession: number;
  fds: number;
}

/** RSS growth of `pid` from 20 to SESSIONS idle logged-in sessions, per session. */
async function idleMemory(name: string, port: number, pid: number): Promise<MemoryFigures> {
  const conns: RawImap[] = [];
  try {
    for (let i = 0; i < 20; i++) conns.push(await login(port));
    await sleep(1000);
    const before = rssKiB(pid);
    let last = Date.now();
    while (conns.length < SESSIONS) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, SESSIONS - conns.length) }, () => login(port)));
      conns.push(...batch);
      if (Date.now() - last > 10_000) {
        log(`  ${name}: ${conns.length} sessions`);
        last = Date.now();
      }
    }
    await sleep(3000);
    const after = rssKiB(pid);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    // Every session must still be alive: a NOOP on a sample of them.
    for (let i = 0; i < conns.length; i += Math.ceil(conns.length / 20)) await conns[i]!.cmd('n', 'NOOP');
    return { sessions: conns.length, kibPerSession: (after - before) / (conns.length - 20), fds };
  } finally {
    for (const c of conns) c.close();
    await sleep(2000);
  }
}

async function prepareMailotp(dovecot: DovecotHandle, store?: Record<string, unknown>, nodeArgs?: string[]): Promise<{ m: MailotpProcess; token: string }> {
  const m = await startMailotp({
    dovecot,
    nodeArgs,
    upstreamTls: 'none',
    logLevel: 'info',
    keepStdout: 1 << 16,
    daemonOtp: { holdTime: '30s' },
    limits: {
      failedLoginsPerUser: 100_000,
      failedLoginsPerIp: 100_000,
      pushesPerUserPerHour: 100_000,
      maxConnections: SESSIONS + 1000,
      maxConnectionsPerIp: SESSIONS + 1000,
    },
    ...(store ? { store } : {}),
  });
  // Two-factor on and one tap for 127.0.0.1: measured logins take the whole approved path.
  const token = await enrol(m, USER);
  const first = login(m.imaps).then((c) => c.close());
  const req = await waitForRequest(m.portal, token, (r) => r.clientIp === '127.0.0.1');
  await decide(m.portal, token, req.id, 'approve');
  await first;
  return { m, token };
}

function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const lines = all.map((r) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`);
  lines.splice(1, 0, `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  return lines.join('\n');
}

export async function scaleBench(): Promise<void> {
  const files = raiseFileLimit(SESSIONS);
  SESSIONS = files.sessions;
  const fileNote = files.note;
  const loadBefore = os.loadavg();
  log(fileNote);
  const dovecot = await startDovecot({ users: [{ user: USER, password: PASS }], maxConnections: SESSIONS + 200, clientsPerMailProcess: 500 });
  const redis = await startRedisServer();
  const stoppers: (() => Promise<unknown>)[] = [() => dovecot.stop(), () => redis.stop()];
  const machine = `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
  const doc: Record<string, unknown> = { date: new Date().toISOString(), machine };
  const docFile = fileURLToPath(new URL('../../bench/last-scale-run.json', import.meta.url));
  // Each part is printed (and saved) as soon as it is done: a later part that fails loses nothing.
  const report = {
    push: (...lines: string[]) => {
      process.stdout.write(`${lines.join('\n')}\n(load average now ${os.loadavg().map((l) => l.toFixed(2)).join(' ')})\n`);
      writeFileSync(docFile, JSON.stringify(doc, null, 2));
    },
  };
  process.stdout.write(`machine: ${machine}\nload average at start ${loadBefore.map((l) => l.toFixed(2)).join(' ')}\n${fileNote}\n`);
  try {
    log(`appending ${MESSAGES} messages of ${SIZE} bytes...`);
    for (let i = 0; i < MESSAGES; i++) await dovecot.appendMessage(USER, message(i));
    const pipe = await startTlsPipe(dovecot.ports.imap);
    stoppers.unshift(() => pipe.stop());
    const nginx = await startNginxMail(dovecot.ports.imap, SESSIONS);
    stoppers.unshift(() => nginx.stop());
    const solo = await prepareMailotp(dovecot);
    stoppers.unshift(() => solo.m.stop());
    const store = { driver: 'redis', url: redis.url, keyPrefix: `bench${process.pid}:` };
    const a = await prepareMailotp(dovecot, store);
    stoppers.unshift(() => a.m.stop());
    const b = await startMailotp({ dovecot, store, upstreamTls: 'none', logLevel: 'info', keepStdout: 1 << 16, daemonOtp: { holdTime: '30s' }, limits: { pushesPerUserPerHour: 100_000 } });
    stoppers.unshift(() => b.stop());

    const targets: RoundTarget[] = [
      { name: 'direct (Dovecot TLS)', port: dovecot.ports.imaps },
      { name: 'bare Node TLS pipe', port: pipe.port },
      { name: 'nginx mail proxy', port: nginx.port },
      { name: 'mailotp (SQLite)', port: solo.m.imaps },
      { name: 'mailotp (Redis)', port: a.m.imaps },
      // What every proxied login contains: a plain login at Dovecot (sequential logins only).
      { name: 'upstream leg (Dovecot plain)', port: dovecot.ports.imap, plain: true },
    ];
    if (VARIANT.length > 0 && PARTS.has('rounds')) {
      const variant = await prepareMailotp(dovecot, undefined, VARIANT);
      stoppers.unshift(() => variant.m.stop());
      targets.splice(4, 0, { name: `mailotp (SQLite, ${VARIANT.join(' ')})`, port: variant.m.imaps });
    }
    if (PARTS.has('rounds')) {
      if (WARMUP > 0) await rounds(targets, WARMUP, 'warm-up round (not timed)');
      const r = await rounds(targets, ROUNDS);
      doc.rounds = r;
      doc.warmupRounds = WARMUP;
      doc.loginOrder = LOGIN_ORDER;
      const nginxFetch = median(r['nginx mail proxy']!.fetch);
      const p50p99 = (xs: number[]) => {
        const sorted = [...xs].sort((x, y) => x - y);
        return [pct(sorted, 50), pct(sorted, 99)] as const;
      };
      const rows = targets.map(({ name: n, plain }) => {
        const f = r[n]!;
        const [p50, p99] = p50p99(f.login);
        const rest = plain ? ['-', '-', '-'] : [median(f.fetch).toFixed(0), `${(median(f.fetch) / nginxFetch).toFixed(2)}x`, median(f.perSecond).toFixed(0)];
        return [n, p50.toFixed(1), p99.toFixed(1), `${(p99 / p50).toFixed(2)}x`, ...rest];
      });
      // Where a login's time goes, seen from the client: connect and TLS handshake to the greeting
      // (mailotp greets on its own; the pipe and nginx pass Dovecot's), then LOGIN to its OK (for
      // mailotp: the decision and the upstream login, which the plain leg's row shows alone).
      const phases = targets.map(({ name: n }) => {
        const f = r[n]!;
        const [g50, g99] = p50p99(f.toGreeting);
        const [l50, l99] = p50p99(f.greetingToOk);
        return [n, g50.toFixed(1), g99.toFixed(1), l50.toFixed(1), l99.toFixed(1), (l99 - l50).toFixed(1)];
      });
      // The first login of a round comes after the target sat idle through the other targets' FETCH
      // and bursts (~25 s): every process on its path wakes cold. Shown apart, and the rest without it.
      const split = targets.map(({ name: n }) => {
        const logins = r[n]!.login;
        const first = logins.filter((_, i) => i % LOGINS === 0).sort((x, y) => x - y);
        const rest = logins.filter((_, i) => i % LOGINS !== 0).sort((x, y) => x - y);
        return [n, median(first).toFixed(1), ...spread(rest)];
      });
      // Split by the login just before: the pipe's and nginx's wait ~40 ms for a delayed ACK before
      // their greeting (Nagle), and the cores sit idle meanwhile; the login after one starts cold.
      const LONG_MS = 20;
      const byBefore = targets.map(({ name: n }) => {
        const f = r[n]!;
        const afterLong = f.login.filter((_, i) => (f.afterMs[i] ?? 0) >= LONG_MS).sort((x, y) => x - y);
        const afterShort = f.login.filter((_, i) => f.afterMs[i] !== null && f.afterMs[i]! < LONG_MS).sort((x, y) => x - y);
        const cells = (xs: number[]) => (xs.length === 0 ? ['0', '-', '-', '-'] : [String(xs.length), ...spread(xs)]);
        return [n, ...cells(afterLong), ...cells(afterShort)];
      });
      report.push(
        `${ROUNDS} interleaved rounds after ${WARMUP} untimed; per round and target: ${LOGINS} sequential logins (${{ interleaved: 'one per target in turn', shuffled: 'one per target in turn, the order drawn afresh each turn', turns: "each target's back to back" }[LOGIN_ORDER]}), one FETCH 1:${MESSAGES} BODY.PEEK[] of ${SIZE} B messages, ${SECONDS} s of logins by ${PARALLEL} parallel clients`,
        table(['path', 'login p50 ms', 'login p99 ms', 'p99/p50', 'FETCH MB/s (median)', 'vs nginx', 'logins/s'], rows),
        'the same logins split: the first of each round (after the target sat idle), and the others',
        table(['path', 'first of a round, median ms', 'others p50 ms', 'others p99 ms', 'others p99/p50'], split),
        'the same logins by phase: connect to greeting, and LOGIN to OK',
        table(['path', 'to greeting p50 ms', 'p99 ms', 'LOGIN to OK p50 ms', 'p99 ms', 'p99 - p50 ms'], phases),
        `the same logins by the login just before: one of ${LONG_MS} ms or more (the pipe's and nginx's, whose ~40 ms wait for a delayed ACK leaves the cores idle) or a shorter one`,
        table(['path', `after >= ${LONG_MS} ms: logins`, 'p50 ms', 'p99 ms', 'p99/p50', `after < ${LONG_MS} ms: logins`, 'p50 ms', 'p99 ms', 'p99/p50'], byBefore),
      );
    }
    if (PARTS.has('taps')) {
      log(`${TAPS} taps: login held on A, tapped on B`);
      const t = await taps(a.m, b, a.token).catch((err: unknown) => {
        report.push(`taps failed: ${err instanceof Error ? err.message : String(err)}`);
        return null;
      });
      if (t) {
      doc.taps = t;
      const s = (xs: number[]) => {
        const sorted = [...xs].sort((x, y) => x - y);
        return [pct(sorted, 50).toFixed(1), pct(sorted, 99).toFixed(1)];
      };
      report.push(
        `two instances on one Redis, ${TAPS} held logins on A each released by a tap on B`,
        table(['interval', 'p50 ms', 'p99 ms'], [
          ['LOGIN sent to A -> request event on B', ...s(t.loginToRequest)],
          ['tap POSTed to B -> OK from A', ...s(t.tapToOk)],
        ]),
      );
      }
    }
    if (PARTS.has('memory')) {
      const mem: Record<string, MemoryFigures> = {};
      for (const [name, port, pid] of [
        ['bare Node TLS pipe', pipe.port, pipe.pid],
        ['nginx mail proxy', nginx.port, nginx.pid],
        ['mailotp (SQLite)', solo.m.imaps, solo.m.child.pid!],
      ] as [string, number, number][]) {
        log(`${SESSIONS} idle sessions through ${name}`);
        mem[name] = await idleMemory(name, port, pid);
      }
      doc.memory = mem;
      const pipeKiB = mem['bare Node TLS pipe']!.kibPerSession;
      report.push(
        `RSS growth of the proxy process from 20 to ${SESSIONS} idle logged-in sessions`,
        table(
          ['proxy', 'sessions', 'KiB per session', 'vs bare pipe', 'open fds'],
          Object.entries(mem).map(([n, f]) => [n, String(f.sessions), f.kibPerSession.toFixed(1), `${(f.kibPerSession / pipeKiB).toFixed(2)}x`, String(f.fds)]),
        ),
      );
    }
  } finally {
    for (const stop of stoppers) await stop().catch(() => undefined);
  }
}
