import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
}

let cached: TestCerts | undefined;
let untrusted: string | undefined;
let dir: string | undefined;

function certDir(): string {
  if (dir === undefined) {
    const made = mkdtempSync(path.join(os.tmpdir(), 'mailotp-certs-'));
    dir = made;
    // Keys are throwaway, but a later test run must not find stale ones lying around.
    process.once('exit', () => rmSync(made, { recursive: true, force: true }));
  }
  return dir;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl ${args[0] ?? ''} failed (is the openssl CLI installed? run scripts/setup-test-env.sh): ${stderr || String(err)}`);
  }
}

function makeCa(cwd: string, name: string, cn: string): void {
  openssl(
    [
      'req', '-x509', '-new', '-nodes',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-keyout', `${name}.key`, '-out', `${name}.crt`,
      '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    cwd,
  );
}

/** A CA plus a server certificate for localhost, 127.0.0.1 and ::1, made once per process. */
export function testCerts(): TestCerts {
  if (cached) return cached;
  const cwd = certDir();
  makeCa(cwd, 'ca', 'mailotp test CA');
  openssl(
    [
      'req', '-new', '-nodes',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost',
    ],
    cwd,
  );
  writeFileSync(
    path.join(cwd, 'server.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '',
    ].join('\n'),
  );
  openssl(
    [
      'x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt',
    ],
    cwd,
  );
  const caFile = path.join(cwd, 'ca.crt');
  cached = { caFile, certFile: path.join(cwd, 'server.crt'), keyFile: path.join(cwd, 'server.key'), ca: readFileSync(caFile) };
  return cached;
}

/** A second CA that signed nothing the tests serve: verifying against it must fail. */
export function untrustedCaFile(): string {
  if (untrusted) return untrusted;
  const cwd = certDir();
  makeCa(cwd, 'other-ca', 'mailotp unrelated CA');
  untrusted = path.join(cwd, 'other-ca.crt');
  return untrusted;
}

/**
 * A server certificate for localhost signed by the test CA, valid from `notBefore` to `notAfter`
 * (either may be in the past: an expired certificate), with its own key. `openssl ca` is the one
 * openssl 3.0 command that takes explicit dates.
 */
export function certWithDates(name: string, notBefore: Date, notAfter: Date): { certFile: string; keyFile: string } {
  testCerts();
  const cwd = certDir();
  const stamp = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
  openssl(['req', '-new', '-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], cwd);
  const db = path.join(cwd, `${name}-ca`);
  mkdirSync(db, { recursive: true });
  writeFileSync(path.join(db, 'index.txt'), '');
  writeFileSync(path.join(db, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
  writeFileSync(
    path.join(db, 'ca.cnf'),
    ['[ca]', 'default_ca = d', '[d]', `database = ${db}/index.txt`, `new_certs_dir = ${db}`, `serial = ${db}/serial`, 'default_md = sha256',
      'policy = p', 'unique_subject = no', 'copy_extensions = copy', '[p]', 'commonName = supplied', ''].join('\n'),
  );
  openssl(['ca', '-batch', '-config', path.join(db, 'ca.cnf'), '-cert', 'ca.crt', '-keyfile', 'ca.key', '-in', `${name}.csr`, '-out', `${name}.crt`,
    '-startdate', stamp(notBefore), '-enddate', stamp(notAfter), '-notext'], cwd);
  return { certFile: path.join(cwd, `${name}.crt`), keyFile: path.join(cwd, `${name}.key`) };
}
