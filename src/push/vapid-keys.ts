import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadOrCreateKeyFile } from '../config/key-file.js';
import { MailotpError } from '../core/errors.js';

/** The VAPID key pair (RFC 8292), base64url: the raw P-256 public point and the private scalar. */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function check(keys: unknown, file: string): VapidKeys {
  const k = keys as Partial<VapidKeys> | null;
  const pub = typeof k?.publicKey === 'string' && B64URL.test(k.publicKey) ? Buffer.from(k.publicKey, 'base64url') : null;
  const priv = typeof k?.privateKey === 'string' && B64URL.test(k.privateKey) ? Buffer.from(k.privateKey, 'base64url') : null;
  if (!pub || pub.length !== 65 || pub[0] !== 4 || !priv || priv.length !== 32) {
    throw new MailotpError('MAILOTP_ERR_CONFIG', `push.webpush.vapidKeyFile: ${file} does not hold a VAPID key pair ({"publicKey","privateKey"}, base64url P-256)`);
  }
  return { publicKey: k!.publicKey!, privateKey: k!.privateKey! };
}

/** The key pair in an existing file; a config error when it cannot be read or holds none. */
export function readVapidKeys(file: string): VapidKeys {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MailotpError('MAILOTP_ERR_CONFIG', `push.webpush.vapidKeyFile: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return check(JSON.parse(text), file);
  } catch (err) {
    if (err instanceof MailotpError) throw err;
    return check(null, file);
  }
}

/** A new P-256 pair in web-push's format (what its generateVAPIDKeys gives), without loading web-push:
 * every admin command reads this module, and only a running server sends pushes. */
export function generateVapidKeys(): VapidKeys {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  // JWK coordinates and scalar of P-256 are always 32 bytes each.
  const [x, y, d] = [jwk.x, jwk.y, jwk.d].map((v) => Buffer.from(v ?? '', 'base64url'));
  return { publicKey: Buffer.concat([Buffer.from([4]), x!, y!]).toString('base64url'), privateKey: d!.toString('base64url') };
}

/**
 * The key pair in `file`, created there (mode 0600) on first start. Browsers tie a subscription to
 * the public key, so it must never change and every instance must read the same file (a shared
 * volume, or the file copied to each). Creation is atomic: written to a temporary name and hard-linked
 * into place, so two instances starting at once on a shared folder end up with one pair.
 */
export function loadOrCreateVapidKeys(file: string): { keys: VapidKeys; created: boolean } {
  const { value, created } = loadOrCreateKeyFile(file, readVapidKeys, () => {
    const keys = generateVapidKeys();
    return { value: keys, text: `${JSON.stringify(keys, null, 2)}\n` };
  });
  return { keys: value, created };
}
