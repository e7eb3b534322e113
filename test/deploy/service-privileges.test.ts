import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { testCerts } from '../helpers/certs.js';
import { BIN, ROOT, runBin, runProcess } from '../e2e/harness.js';
import { stopChild, waitForStart, writeMinimalConfig } from './deploy-kit.js';

// What the unit's User=, CapabilityBoundingSet=, AmbientCapabilities= and NoNewPrivileges= give the
// process, reproduced with util-linux setpriv, and its ProtectSystem=strict/StateDirectory/ProtectHome
// with a private mount namespace (unshare), since no systemd runs here: an unprivileged user that can
// bind a port below 1024 through the one ambient capability, and write nowhere but its state
// directory; and its SystemCallFilter=/RestrictAddressFamilies= as a seccomp filter loaded by
// libseccomp. The user mailotp does not exist on this machine; nobody (65534) stands in for it.

const UNIT = readFileSync(join(ROOT, 'deploy', 'systemd', 'mailotp.service'), 'utf8');
const NOBODY = 65534;
const CAP_NET_BIND_SERVICE_BIT = 10n;
const canRun =
  process.getuid?.() === 0 &&
  Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) > 100 &&
  spawnSync('unshare', ['--mount', 'true']).status === 0 &&
  spawnSync('/usr/bin/python3', ['-c', 'import seccomp']).status === 0;

function unitValue(key: string): string {
  const hit = UNIT.split('\n').find((l) => l.startsWith(`${key}=`));
  assert.ok(hit, `${key}= in the unit`);
  return hit.slice(key.length + 1);
}

/** setpriv arguments equivalent to the unit's privilege settings. */
function setprivArgs(): string[] {
  const caps = (key: string) =>
    unitValue(key)
      .split(/\s+/)
      .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)
      .join(',');
  assert.equal(unitValue('NoNewPrivileges'), 'yes');
  return [
    `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs',
    `--bounding-set=-all,${caps('CapabilityBoundingSet')}`,
    `--inh-caps=-all,${caps('AmbientCapabilities')}`,
    `--ambient-caps=-all,${caps('AmbientCapabilities')}`,
  ];
}

/** The unit's SystemCallFilter= lines as one allow list, groups expanded by systemd-analyze itself. */
async function allowedSyscalls(): Promise<string[]> {
  const r = await runProcess('systemd-analyze', ['syscall-filter', '--no-pager']);
  const groups = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('@')) groups.set(line.trim(), (current = []));
    else if (current && /^\s+[@a-z0-9_-]+$/.test(line)) current.push(line.trim());
  }
  const expand = (item: string, seen = new Set<string>()): string[] => {
    if (!item.startsWith('@')) return [item];
    if (seen.has(item)) return [];
    seen.add(item);
    const members = groups.get(item);
    assert.ok(members, `systemd knows ${item}`);
    return members.flatMap((m) => expand(m, seen));
  };
  const allowed = new Set<string>();
  for (const filter of UNIT.split('\n').filter((l) => l.startsWith('SystemCallFilter='))) {
    const spec = filter.slice('SystemCallFilter='.length);
    const deny = spec.startsWith('~');
    for (const item of spec.replace(/^~/, '').split(/\s+/)) {
      for (const name of expand(item)) {
        if (deny) allowed.delete(name);
        else allowed.add(name);
      }
    }
  }
  assert.equal(unitValue('SystemCallErrorNumber'), 'EPERM');
  return [...allowed].sort();
}

const ADDRESS_FAMILIES: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16 };

/** Loads a seccomp filter like systemd's (allow list, EPERM otherwise; socket() only for the listed
 * address families), then execs the rest of argv. Debian's python3-seccomp (libseccomp). */
const SECCOMP_EXEC = `
import errno, os, sys, seccomp
names = open(sys.argv[1]).read().split()
families = [int(x) for x in sys.argv[2].split(',')]
f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
for n in names:
    if n == 'socket':
        continue
    try:
        f.add_rule(seccomp.ALLOW, n)
    except Exception:
        pass  # not a system call of this architecture
for fam in families:
    f.add_rule(seccomp.ALLOW, 'socket', seccomp.Arg(0, seccomp.EQ, fam))
f.load()
os.execv(sys.argv[3], sys.argv[3:])
`;

/** Writes the launcher and the allow list into dir; returns the families argument. */
async function writeSeccompFiles(dir: string, families: string[]): Promise<string> {
  writeFileSync(join(dir, 'seccomp-exec.py'), SECCOMP_EXEC, { mode: 0o644 });
  writeFileSync(join(dir, 'syscalls.txt'), (await allowedSyscalls()).join('\n'), { mode: 0o644 });
  return families.map((f) => ADDRESS_FAMILIES[f] ?? assert.fail(`unknown family ${f}`)).join(',');
}

/** A port below 1024 that nothing on 127.0.0.1 uses right now (checked by binding it as root). */
async function freeLowPort(): Promise<number> {
  const start = 600 + Math.floor(Math.random() * 300);
  for (let port = start; port < 1000; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below 1000');
}

function capBits(status: string, field: string): bigint {
  const hex = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status)?.[1];
  assert.ok(hex, field);
  return BigInt(`0x${hex}`);
}

describe('the unit\'s privileges (setpriv stand-in for systemd)', { skip: canRun ? false : 'needs root, mount namespaces (unshare), python3-seccomp and ip_unprivileged_port_start above 100' }, () => {
  it('without the ambient capability the unprivileged user cannot bind a low port', async () => {
    const port = await freeLowPort();
    const r = await runProcess('setpriv', [
      `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs', '--bounding-set=-all', '--inh-caps=-all',
      process.execPath, '-e', `require('net').createServer().listen(${port}, '127.0.0.1').on('error', (e) => { console.log(e.code); process.exit(3); })`,
    ]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout.trim(), 'EACCES');
  });

  it('mailotp start runs as that user with CAP_NET_BIND_SERVICE only, on a read-only system, serves a low port, writes only its state directory', async () => {
    const [imaps, portal] = [await freeLowPort(), await freeLowPort()];
    assert.notEqual(imaps, portal);
    const certs = testCerts();
    // /etc/mailotp (ConfigurationDirectory): readable; the key readable by the service's group only.
    const etc = mkdtempSync(join(tmpdir(), 'mailotp-etc-'));
    // /var/lib/mailotp (StateDirectory): owned by the service user, 0750 as in the unit.
    const state = mkdtempSync(join(tmpdir(), 'mailotp-state-'));
    let child: ReturnType<typeof spawn> | null = null;
    try {
      chmodSync(etc, 0o755);
      copyFileSync(certs.certFile, join(etc, 'server.crt'));
      copyFileSync(certs.keyFile, join(etc, 'server.key'));
      chownSync(join(etc, 'server.key'), 0, NOBODY);
      chmodSync(join(etc, 'server.key'), 0o640);
      chownSync(state, NOBODY, NOBODY);
      chmodSync(state, 0o750);
      // 0.0.0.0: fastify then lists the interfaces, which needs AF_NETLINK (as the unit says why).
      const config = writeMinimalConfig(etc, { state, cert: join(etc, 'server.crt'), key: join(etc, 'server.key'), imapPort: imaps, portalHost: '0.0.0.0', portalPort: portal });
      const families = await writeSeccompFiles(etc, unitValue('RestrictAddressFamilies').split(/\s+/));
      // ProtectSystem=strict with StateDirectory, and ProtectHome, in a mount namespace of its own:
      // everything read-only but the state directory (stricter than the unit, which also gives a
      // private writable /tmp), /root and /home hidden. Then the unit's user and capabilities.
      const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      // The checkout may sit below a directory only root can enter (a CI clone in `mktemp -d`);
      // installed, the code lives in a world-readable place, so the test shows it one: the checkout
      // mounted, read-only, at <etc>/app.
      const app = join(etc, 'app');
      mkdirSync(app);
      chmodSync(app, 0o755);
      const script = [
        `mount --bind ${quote(state)} ${quote(state)}`,
        `mount --bind ${quote(ROOT)} ${quote(app)}`,
        `mount -o remount,bind,ro ${quote(app)}`,
        'mount -o remount,bind,ro /',
        'mount -t tmpfs -o mode=000 tmpfs /root',
        'mount -t tmpfs -o mode=000 tmpfs /home',
        `exec setpriv ${setprivArgs().join(' ')} /usr/bin/python3 ${[join(etc, 'seccomp-exec.py'), join(etc, 'syscalls.txt'), families, process.execPath, join(app, relative(ROOT, BIN)), 'start', '--config', config].map(quote).join(' ')}`,
      ].join(' && ');
      const proc = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'], cwd: state });
      child = proc;
      await waitForStart(proc);

      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      assert.match(status, new RegExp(`^Uid:\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}\\s+${NOBODY}$`, 'm'));
      assert.match(status, /^NoNewPrivs:\s+1$/m);
      const only = 1n << CAP_NET_BIND_SERVICE_BIT;
      for (const field of ['CapEff', 'CapPrm', 'CapAmb', 'CapBnd']) assert.equal(capBits(status, field), only, `${field} is CAP_NET_BIND_SERVICE alone`);

      // It serves, checked the way an admin would after `systemctl start`.
      const doctor = await runBin(['doctor', '--config', config, '--only', 'listeners,certificate,portal', '--cert-warn-days', '1']);
      assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
      assert.match(doctor.stdout, new RegExp(`^ok {4}listener imap 127\\.0\\.0\\.1:${imaps} \\(implicit\\): \\* OK`, 'm'));
      // The key files it created are its own and private (UMask=0077 in the unit; mailotp makes them 0600).
      const secret = await runProcess('stat', ['-c', '%u %a', join(state, 'portal-secret.key')]);
      assert.equal(secret.stdout.trim(), `${NOBODY} 600`);
      // The filter really was on, and the mount namespace read-only, for it.
      assert.match(status, /^Seccomp:\s+2$/m);
      const mounts = readFileSync(`/proc/${proc.pid}/mountinfo`, 'utf8').split('\n');
      assert.ok(mounts.some((l) => / \/ \/ ro[, ]/.test(l)), 'the root file system is read-only for mailotp');
    } finally {
      await stopChild(child);
      rmSync(etc, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('without AF_NETLINK in RestrictAddressFamilies, mailotp with its portal on 0.0.0.0 cannot start (why the unit allows it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-netlink-'));
    try {
      const certs = testCerts();
      const families = await writeSeccompFiles(dir, unitValue('RestrictAddressFamilies').split(/\s+/).filter((f) => f !== 'AF_NETLINK'));
      const config = writeMinimalConfig(dir, { state: dir, cert: certs.certFile, key: certs.keyFile, portalHost: '0.0.0.0', level: 'warn' });
      const r = await runProcess('/usr/bin/python3', [join(dir, 'seccomp-exec.py'), join(dir, 'syscalls.txt'), families, process.execPath, BIN, 'start', '--config', config]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /uv_interface_addresses/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
