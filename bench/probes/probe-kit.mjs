// Shared by the probes: a Dovecot, mailotp (approved path, plain upstream) or the bare pipe with
// bench/probes/preload.cjs loaded, and a reader for the preload's SIGWINCH report.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
export const PRELOAD = fileURLToPath(new URL('./preload.cjs', import.meta.url));
const { startDovecot } = await import(`${dist}test/helpers/dovecot.js`);
const { startMailotp, enrol, waitForRequest, decide } = await import(`${dist}test/e2e/harness.js`);
export const { RawImap, pct } = await import(`${dist}bench/raw-imap.js`);
const { startTlsPipe } = await import(`${dist}bench/scale-targets.js`);

export const login = async (port) => {
  const c = await RawImap.open(port);
  await c.cmd('a', 'LOGIN bench bench-pass-1');
  return c;
};

/** n logins one after another, each logged out and closed once it is in. */
export async function sequentialLogins(port, n) {
  for (let i = 0; i < n; i++) {
    const c = await login(port);
    c.sock.write('z LOGOUT\r\n');
    c.close();
  }
}

/** which: 'mailotp' | 'pipe'; nodeOptions: extra flags for the child (e.g. --heapsnapshot-signal=SIGUSR2). */
export async function startTarget(which, sessions, nodeOptions = '') {
  const dovecot = await startDovecot({ users: [{ user: 'bench', password: 'bench-pass-1' }], maxConnections: sessions + 200, clientsPerMailProcess: 500 });
  // PROBE_PRELOAD=0: without the preload (its statement timer is code of its own in the process).
  process.env.NODE_OPTIONS = `--expose-gc ${process.env.PROBE_PRELOAD === '0' ? '' : `--require ${PRELOAD}`} ${nodeOptions}`;
  // PROBE_CHILD_ENV="NAME=VALUE ..." (e.g. LD_PRELOAD=libjemalloc.so.2): set for the target process only.
  const childEnv = (process.env.PROBE_CHILD_ENV ?? '').split(' ').filter(Boolean).map((kv) => kv.split('='));
  for (const [k, v] of childEnv) process.env[k] = v;
  try {
    if (which === 'pipe') {
      const p = await startTlsPipe(dovecot.ports.imap);
      return { port: p.port, pid: p.pid, dovecot, stop: async () => (await p.stop(), await dovecot.stop()) };
    }
    const m = await startMailotp({
      dovecot,
      // PROBE_UPSTREAM_TLS=implicit|starttls: Dovecot over TLS (the test CA as upstream ca).
      upstreamTls: process.env.PROBE_UPSTREAM_TLS ?? 'none',
      logLevel: 'info',
      // The client keeps 64 KiB of mailotp's stdout unless a probe reads all of it (PROBE_KEEP_STDOUT=1).
      ...(process.env.PROBE_KEEP_STDOUT === '1' ? {} : { keepStdout: 1 << 16 }),
      daemonOtp: { holdTime: '30s' },
      limits: { failedLoginsPerUser: 100000, failedLoginsPerIp: 100000, maxConnections: sessions + 1000, maxConnectionsPerIp: sessions + 1000 },
    });
    const token = await enrol(m, 'bench');
    const first = login(m.imaps).then((c) => c.close());
    const req = await waitForRequest(m.portal, token);
    await decide(m.portal, token, req.id, 'approve');
    await first;
    return { port: m.imaps, pid: m.child.pid, dovecot, log: () => m.log(), stop: async () => (await m.stop(), await dovecot.stop()) };
  } finally {
    delete process.env.NODE_OPTIONS;
    for (const [k] of childEnv) delete process.env[k];
  }
}

export const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

/** Sends `signal` to a child whose preload answers it by writing `file` (JSON) into the child's working directory, which is ours. */
export async function signalForFile(pid, signal, file) {
  rmSync(file, { force: true });
  process.kill(pid, signal);
  const deadline = Date.now() + 10_000;
  while (!existsSync(file)) {
    // With PROBE_PRELOAD=0 nothing answers SIGWINCH: say so instead of waiting for ever.
    if (Date.now() > deadline) throw new Error(`no ${file} from process ${pid} within 10 s after ${signal} (is its preload loaded?)`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 50));
  const out = JSON.parse(readFileSync(file, 'utf8'));
  rmSync(file, { force: true });
  return out;
}

/** The preload's report. */
export const report = (pid) => signalForFile(pid, 'SIGWINCH', `probe-${pid}.json`);
