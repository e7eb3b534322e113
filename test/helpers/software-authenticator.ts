/**
 * A WebAuthn authenticator written for the tests with node:crypto alone (ES256, "none" attestation):
 * it builds the same bytes a security key would (CBOR, authenticator data, ECDSA over
 * authData || SHA-256(clientDataJSON)), independently of the library the server checks them with.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string): Buffer => createHash('sha256').update(b).digest();

/** Just the CBOR (RFC 8949) that attestation objects and COSE keys need: ints, byte and text strings, maps. */
export function cbor(v: number | string | Uint8Array | Map<number | string, unknown>): Buffer {
  const head = (major: number, n: number): Buffer => {
    if (n < 24) return Buffer.from([(major << 5) | n]);
    if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
    if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
    const b = Buffer.alloc(5);
    b[0] = (major << 5) | 26;
    b.writeUInt32BE(n, 1);
    return b;
  };
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') {
    const s = Buffer.from(v, 'utf8');
    return Buffer.concat([head(3, s.length), s]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), v]);
  const parts: Buffer[] = [head(5, v.size)];
  for (const [k, x] of v) parts.push(cbor(k), cbor(x as Parameters<typeof cbor>[0]));
  return Buffer.concat(parts);
}

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface SoftwareCredential {
  id: Buffer;
  privateKey: KeyObject;
  /** The P-256 point, for the COSE key. */
  x: Buffer;
  y: Buffer;
  userHandle: string;
  signCount: number;
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string };
  user: { id: string };
}
interface RequestOptions {
  challenge: string;
  rpId?: string;
}

function newCredential(userHandle: string): SoftwareCredential {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return { id: randomBytes(16), privateKey, x: Buffer.from(jwk.x ?? '', 'base64url'), y: Buffer.from(jwk.y ?? '', 'base64url'), userHandle, signCount: 0 };
}

/** One authenticator; each create() makes a new credential with its own key pair. */
export class SoftwareAuthenticator {
  readonly credentials: SoftwareCredential[] = [];

  private authData(rpId: string, flags: number, signCount: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(signCount);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  }

  /** navigator.credentials.create() as the browser returns it (RegistrationResponseJSON); `credential`: report an existing one again. */
  create(options: CreationOptions, origin: string, opts: { rpId?: string; credential?: SoftwareCredential } = {}) {
    const rpId = opts.rpId ?? options.rp.id ?? '';
    const cred = opts.credential ?? newCredential(options.user.id);
    if (!opts.credential) this.credentials.push(cred);
    // COSE_Key: kty EC2 (2), alg ES256 (-7), crv P-256 (1), x, y.
    const cose = cbor(new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, cred.x], [-3, cred.y]]));
    const idLen = Buffer.from([cred.id.length >> 8, cred.id.length & 0xff]);
    const attested = Buffer.concat([Buffer.alloc(16), idLen, cred.id, cose]);
    const authData = this.authData(rpId, FLAG_UP | FLAG_UV | FLAG_AT, cred.signCount, attested);
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge: options.challenge, origin, crossOrigin: false }));
    const attestationObject = cbor(new Map<string, unknown>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]));
    return {
      id: b64url(cred.id),
      rawId: b64url(cred.id),
      type: 'public-key' as const,
      clientExtensionResults: {},
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal' as const] },
    };
  }

  /** navigator.credentials.get() with `cred` (AuthenticationResponseJSON); the counter moves on unless one is given. */
  get(options: RequestOptions, origin: string, cred: SoftwareCredential, opts: { signCount?: number; rpId?: string } = {}) {
    cred.signCount = opts.signCount ?? cred.signCount + 1;
    const authData = this.authData(opts.rpId ?? options.rpId ?? '', FLAG_UP | FLAG_UV, cred.signCount);
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: options.challenge, origin, crossOrigin: false }));
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), cred.privateKey);
    return {
      id: b64url(cred.id),
      rawId: b64url(cred.id),
      type: 'public-key' as const,
      clientExtensionResults: {},
      response: { clientDataJSON: b64url(clientDataJSON), authenticatorData: b64url(authData), signature: b64url(signature), userHandle: cred.userHandle },
    };
  }
}
