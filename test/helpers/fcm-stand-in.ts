import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** Pieces for standing in for fcm.googleapis.com on 127.0.0.1 under the real firebase-admin. */

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A throwaway CA and a certificate for fcm.googleapis.com that only this test trusts. */
export function makeFcmCerts(dir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  openssl(['req', '-x509', '-new', '-nodes', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=mailotp FCM test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  openssl(['req', '-new', '-nodes', ...ec, '-keyout', 'fcm.key', '-out', 'fcm.csr', '-subj', '/CN=fcm.googleapis.com'], dir);
  writeFileSync(path.join(dir, 'fcm.ext'), 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:fcm.googleapis.com\n');
  openssl(['x509', '-req', '-in', 'fcm.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-sha256', '-extfile', 'fcm.ext', '-out', 'fcm.crt'], dir);
  const read = (f: string): Buffer => readFileSync(path.join(dir, f));
  return { ca: read('ca.crt'), cert: read('fcm.crt'), key: read('fcm.key') };
}

/**
 * Every connection firebase-admin opens for fcm.googleapis.com goes to the local server instead,
 * still verified as fcm.googleapis.com, against the test CA only.
 */
export class LocalFcmAgent extends https.Agent {
  constructor(
    private readonly port: number,
    private readonly ca: Buffer,
  ) {
    super({ keepAlive: false });
  }

  override createConnection(_options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex {
    const socket = tls.connect({ host: '127.0.0.1', port: this.port, ca: [this.ca], servername: 'fcm.googleapis.com' });
    if (callback) {
      socket.once('secureConnect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, socket));
    }
    return socket;
  }
}
