import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface TestCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: Buffer;
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

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
      ...EC_KEY,
      '-keyout', `${name}.key`, '-out', `${name}.crt`,
      '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    cwd,
  );
}

/** A certificate and its key, as files and as bytes. */
export interface CertPair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

/** subjectAltName for host names and addresses alike. */
const altNames = (hosts: readonly string[]) => `subjectAltName=${hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',')}`;

function pair(cwd: string, name: string): CertPair {
  const certFile = path.join(cwd, `${name}.crt`);
  const keyFile = path.join(cwd, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
}

/**
 * A CA of its own (dir/caName.crt) and a server certificate it signed for `hosts` (dir/name.crt,
 * dir/name.key), for a server that only the test holding `ca` trusts.
 */
export function caSignedCert(dir: string, name: string, hosts: readonly string[], ca: { name: string; cn: string }): CertPair & { ca: Buffer; caFile: string } {
  makeCa(dir, ca.name, ca.cn);
  openssl(['req', '-new', '-nodes', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${hosts[0] ?? 'localhost'}`], dir);
  writeFileSync(
    path.join(dir, `${name}.ext`),
    ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth', altNames(hosts), ''].join('\n'),
  );
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca.name}.crt`, '-CAkey', `${ca.name}.key`, '-CAcreateserial', '-days', '2', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.crt`],
    dir,
  );
  const caFile = path.join(dir, `${ca.name}.crt`);
  return { ...pair(dir, name), ca: readFileSync(caFile), caFile };
}

/** A self-signed certificate (its own CA) with common name `cn`, for `hosts`: dir/name.crt and dir/name.key. */
export function selfSignedCert(dir: string, name: string, cn: string, hosts: readonly string[] = ['localhost', '127.0.0.1']): CertPair {
  openssl(['req', '-x509', '-new', '-nodes', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=${cn}`, '-addext', altNames(hosts)], dir);
  return pair(dir, name);
}

/** A CA plus a server certificate for localhost, 127.0.0.1 and ::1, made once per process. */
export function testCerts(): TestCerts {
  if (cached) return cached;
  const made = caSignedCert(certDir(), 'server', ['localhost', '127.0.0.1', '::1'], { name: 'ca', cn: 'mailotp test CA' });
  cached = { caFile: made.caFile, certFile: made.certFile, keyFile: made.keyFile, ca: made.ca };
  return cached;
}

/** An RSA private key (PKCS#8 PEM) such as a Firebase service-account file carries. */
export function serviceAccountKeyPem(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
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
  openssl(['req', '-new', '-nodes', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost', '-addext', altNames(['localhost', '127.0.0.1'])], cwd);
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
