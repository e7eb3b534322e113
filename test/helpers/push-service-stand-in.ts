/**
 * A local HTTPS server standing in for a Web Push service (FCM, Mozilla autopush, Apple), and the
 * browser's side of a subscription: the test makes its own P-256 key pair and auth secret, and
 * decrypts what arrives (RFC 8291, aes128gcm per RFC 8188) and checks the VAPID JWT (RFC 8292)
 * with node:crypto alone, independently of the web-push library under test.
 */
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { selfSignedCert } from './certs.js';

export interface PushDelivery {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface BrowserSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  /** The user agent's private half (kept by the browser, never sent). */
  ecdh: ReturnType<typeof createECDH>;
  authSecret: Buffer;
}

export interface VapidClaims {
  aud: string;
  exp: number;
  sub: string;
}

export class PushServiceStandIn {
  readonly deliveries: PushDelivery[] = [];
  /** Status codes to answer with, in order; the last one repeats. */
  script: number[] = [201];
  readonly ca: Buffer;
  private server!: https.Server;
  private port = 0;

  private constructor(private readonly dir: string) {
    this.ca = selfSignedCert(dir, 'push', 'push.test').cert;
  }

  static async start(): Promise<PushServiceStandIn> {
    const s = new PushServiceStandIn(mkdtempSync(path.join(os.tmpdir(), 'mailotp-push-')));
    s.server = https.createServer({ cert: s.ca, key: readFileSync(path.join(s.dir, 'push.key')) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        s.deliveries.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
        const status = s.script.length > 1 ? s.script.shift()! : s.script[0]!;
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(status === 201 ? '' : 'push service says no');
      });
    });
    await new Promise<void>((resolve) => s.server.listen(0, '127.0.0.1', resolve));
    s.port = (s.server.address() as AddressInfo).port;
    return s;
  }

  get origin(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** What PushManager.subscribe() would return, with its private parts kept for decryption. */
  subscribe(id = randomBytes(8).toString('hex')): BrowserSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const authSecret = randomBytes(16);
    return {
      endpoint: `${this.origin}/push/${id}`,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: authSecret.toString('base64url') },
      ecdh,
      authSecret,
    };
  }

  async waitForDeliveries(n: number, timeoutMs = 5000): Promise<PushDelivery[]> {
    const end = Date.now() + timeoutMs;
    while (this.deliveries.length < n) {
      if (Date.now() > end) throw new Error(`expected ${n} push deliveries, got ${this.deliveries.length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.deliveries;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** RFC 8291 section 3 + RFC 8188: the plaintext of one aes128gcm message (a single record). */
export function decryptAes128gcm(body: Buffer, sub: BrowserSubscription): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const ciphertext = body.subarray(21 + idlen);
  if (idlen !== 65 || ciphertext.length > rs) throw new Error(`unexpected header: idlen ${idlen}, rs ${rs}, ${ciphertext.length} bytes`);
  const uaPublic = sub.ecdh.getPublicKey();
  const ecdhSecret = sub.ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0', 'latin1'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, sub.authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0', 'latin1'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0', 'latin1'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - 16));
  const padded = Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - 16)), decipher.final()]);
  // The last record ends with the delimiter 0x02 and then zero or more 0x00 of padding.
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('no last-record delimiter');
  return padded.subarray(0, end);
}

/**
 * RFC 8292: `Authorization: vapid t=JWT, k=PUBLIC_KEY`. Checks the ES256 signature against k and
 * returns the claims and k.
 */
export function verifyVapid(authorization: string | undefined): { claims: VapidClaims; publicKey: string } {
  const m = /^vapid t=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+), k=([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
  if (!m) throw new Error(`not a vapid Authorization header: ${authorization}`);
  const [header, payload, signature] = m[1]!.split('.') as [string, string, string];
  const head = JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg: string; typ: string };
  if (head.alg !== 'ES256') throw new Error(`alg ${head.alg}`);
  const raw = Buffer.from(m[2]!, 'base64url');
  if (raw.length !== 65 || raw[0] !== 4) throw new Error('k is not an uncompressed P-256 point');
  const key = createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const ok = verify('sha256', Buffer.from(`${header}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
  if (!ok) throw new Error('VAPID JWT signature does not verify');
  return { claims: JSON.parse(Buffer.from(payload, 'base64url').toString()) as VapidClaims, publicKey: m[2]! };
}
