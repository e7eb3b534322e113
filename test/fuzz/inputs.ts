import fc from 'fast-check';
import { V2_SIGNATURE, proxyV1 as proxyV1Line, proxyV2 as proxyV2Header } from '../helpers/proxy-forwarder.js';

/**
 * Input generators for the fuzz properties: byte streams that look enough like the real thing to
 * get past the first check (tags, literals, CRLF, PROXY signatures), mixed with plain noise.
 */

const bytes = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** Noise with the bytes that matter to line readers over-represented. */
export const noiseBytes = (maxLength = 64): fc.Arbitrary<Uint8Array> =>
  fc
    .array(fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 255 }) }, fc.constantFrom(0x0d, 0x0a, 0x20, 0x22, 0x7b, 0x7d, 0x28, 0x29, 0x5c, 0x00, 0x2b)), { maxLength })
    .map((a) => Uint8Array.from(a));

const atom = fc.stringMatching(/^[A-Za-z0-9._@-]{1,12}$/);
const quoted = fc.string({ maxLength: 12 }).map((s) => `"${s.replace(/[\\"]/g, '\\$&').replace(/[\r\n\0]/g, '')}"`);

/** IMAP: tagged commands with atoms, quoted strings, lists and both kinds of literal; sometimes broken. */
const imapPiece: fc.Arbitrary<Uint8Array> = fc.oneof(
  atom.map((a) => bytes(`${a} `)),
  quoted.map((q) => bytes(`${q} `)),
  fc.constantFrom('(', ')', ' ', '\r\n', '\n', '\r', '*', '{', '}', 'LOGIN ', 'AUTHENTICATE PLAIN', 'a1 ').map(bytes),
  fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.integer({ min: -2, max: 2 })).map(([body, sync, skew]) =>
    // The announced size is sometimes off by a little, so short and overlong literals occur too.
    Uint8Array.from([...bytes(`{${Math.max(0, body.length + skew)}${sync ? '' : '+'}}\r\n`), ...body]),
  ),
  noiseBytes(16),
);

function concat(parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

export const imapStream: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.array(imapPiece, { maxLength: 30 }).map(concat) },
  { weight: 1, arbitrary: fc.array(fc.tuple(atom, fc.array(fc.oneof(atom, quoted), { maxLength: 4 })), { maxLength: 6 }).map((cmds) => Buffer.from(cmds.map(([t, args]) => `${t} NOOP ${args.join(' ')}\r\n`).join(''), 'latin1')) },
  { weight: 1, arbitrary: noiseBytes(400).map((b) => Buffer.from(b)) },
);

/** POP3 and SMTP: lines of text, empty and over-long ones, bare LF, stray CR, noise. */
export const lineStream = (maxLine: number): fc.Arbitrary<Buffer> =>
  fc
    .array(
      fc.oneof(
        fc.string({ maxLength: 20 }).map((s) => bytes(`${s}\r\n`)),
        fc.constantFrom('USER alice\r\n', 'PASS secret\n', 'AUTH PLAIN\r\n', 'EHLO x\r\n', '\r\n', '\r', '\n', 'QUIT').map(bytes),
        fc.integer({ min: maxLine - 2, max: maxLine + 3 }).map((n) => bytes(`${'x'.repeat(n)}\r\n`)),
        noiseBytes(24),
      ),
      { maxLength: 20 },
    )
    .map(concat);

/** Cut points for splitting a stream into chunks, as TCP may deliver it. */
export const cuts = fc.array(fc.nat(), { maxLength: 12 });

/** `data` split at `points` (taken modulo its length), in order; every byte exactly once. */
export function chunked(data: Buffer, points: number[]): Buffer[] {
  if (data.length === 0) return [data];
  const at = [...new Set(points.map((p) => p % data.length))].filter((p) => p > 0).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, data.length]) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  return out;
}

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
const ipv6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 });
const port = fc.nat(65535);
const tlvs = fc.array(fc.tuple(fc.nat(255), fc.uint8Array({ maxLength: 20 })), { maxLength: 4 });

export interface ProxyCase {
  family: 4 | 6;
  src: number[];
  dst: number[];
  sport: number;
  dport: number;
  tlvs: [number, Uint8Array][];
  rest: Uint8Array;
}

export const proxyCase: fc.Arbitrary<ProxyCase> = fc.oneof(
  fc.record({ family: fc.constant(4 as const), src: ipv4, dst: ipv4, sport: port, dport: port, tlvs, rest: fc.uint8Array({ maxLength: 30 }) }),
  fc.record({ family: fc.constant(6 as const), src: ipv6, dst: ipv6, sport: port, dport: port, tlvs, rest: fc.uint8Array({ maxLength: 30 }) }),
);

const text = (family: 4 | 6, a: number[]): string => (family === 4 ? a.join('.') : a.map((g) => g.toString(16)).join(':'));

/** The same header in PROXY v1 text. */
export function proxyV1(c: ProxyCase): Buffer {
  return Buffer.concat([proxyV1Line(text(c.family, c.src), text(c.family, c.dst), c.sport, c.dport), Buffer.from(c.rest)]);
}

/** The same header in PROXY v2 binary, with its TLVs (built by the test helper the forwarder uses). */
export function proxyV2(c: ProxyCase): Buffer {
  const header = proxyV2Header({
    command: 'proxy',
    src: text(c.family, c.src),
    dst: text(c.family, c.dst),
    sport: c.sport,
    dport: c.dport,
    tlvs: c.tlvs.map(([type, value]) => ({ type, value: Buffer.from(value) })),
  });
  return Buffer.concat([header, Buffer.from(c.rest)]);
}

/** Near-misses of a PROXY header: a real one with a few bytes overwritten or cut, or noise after a signature. */
export const proxyNoise: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(proxyCase, fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }), fc.nat()).map(([c, v1, flips, cut]) => {
    const b = Buffer.from(v1 ? proxyV1(c) : proxyV2(c));
    for (const [at, value] of flips) b[at % b.length] = value;
    return b.subarray(0, b.length - (cut % 4));
  }),
  noiseBytes(64).map((n) => Buffer.concat([Buffer.from('PROXY ', 'latin1'), Buffer.from(n)])),
  fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), noiseBytes(64)).map(([h, n]) => Buffer.concat([V2_SIGNATURE, Buffer.from(h), Buffer.from(n)])),
  noiseBytes(128).map((n) => Buffer.from(n)),
);
