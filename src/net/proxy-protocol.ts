import net from 'node:net';
import { unmapIp } from '../core/trusted-networks.js';

/**
 * PROXY protocol (HAProxy's spec, v1 text and v2 binary): a TCP load balancer prepends one header
 * naming the real client before the first byte of the mail protocol. mailotp keys approvals and
 * rate limits by client IP, so behind such a balancer this header is the only source of truth.
 * https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */

export interface ProxyEndpoint {
  ip: string;
  port: number;
}

export interface ProxyHeader {
  version: 1 | 2;
  /**
   * The client (source) and the address it connected to (destination). null when the header
   * vouches for no client (v2 LOCAL such as a balancer's health check, v1 UNKNOWN, v2 UNSPEC or
   * UNIX): the spec then says the connection's own endpoints stand.
   */
  addresses: { source: ProxyEndpoint; destination: ProxyEndpoint } | null;
  /** Bytes the header took on the wire. */
  length: number;
}

export type ProxyParseResult =
  | { status: 'incomplete' }
  /** `rest`: what arrived after the header; it belongs to the mail protocol and must be replayed. */
  | { status: 'done'; header: ProxyHeader; rest: Buffer }
  | { status: 'invalid'; reason: string };

/** The spec's bound for a v1 line: "PROXY TCP6 " + two full IPv6 addresses + two ports + CRLF. */
export const V1_MAX_LENGTH = 107;
/**
 * v2 allows 16 + 65535 bytes; real balancers send a few TLVs (AWS NLB's VPC endpoint id, HAProxy's
 * unique id, SNI, TLS details), far below this. A header past the bound is refused, which keeps a
 * peer from making us buffer 64 KiB per connection before anything is checked.
 */
export const DEFAULT_V2_MAX_LENGTH = 4096;
/** The balancer sends the header at once; a peer trickling it in is not a balancer. */
export const DEFAULT_HEADER_TIMEOUT_MS = 5000;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;
const PORT = /^(?:0|[1-9][0-9]{0,4})$/;

/** "::ffff:192.0.2.1" → "192.0.2.1", as clientIpOf does, so an approval matches however the client arrived. */
export const unmapIPv4 = unmapIp;

/** The one spelling of an IPv6 address (RFC 5952, as socket.remoteAddress gives it), IPv4-mapped unwrapped. */
function canonicalIPv6(text: string): string {
  return unmapIPv4(new net.SocketAddress({ address: text, family: 'ipv6' }).address);
}

function parsePort(text: string | undefined): number | null {
  if (text === undefined || !PORT.test(text)) return null;
  const n = Number(text);
  return n <= 65535 ? n : null;
}

function invalid(reason: string): ProxyParseResult {
  return { status: 'invalid', reason };
}

/** Whether the first bytes agree with `expected` as far as they go. */
function prefixMatches(buf: Buffer, expected: Buffer): boolean {
  const n = Math.min(buf.length, expected.length);
  return buf.subarray(0, n).equals(expected.subarray(0, n));
}

function parseV1(buf: Buffer): ProxyParseResult {
  if (!prefixMatches(buf, V1_PREFIX)) return invalid('not a PROXY v1 header');
  const scan = Math.min(buf.length, V1_MAX_LENGTH);
  let end = -1;
  for (let i = 0; i < scan; i++) {
    const b = buf[i]!;
    if (b === 0x0d) {
      if (i + 1 >= buf.length) return { status: 'incomplete' };
      if (buf[i + 1] !== 0x0a) return invalid('PROXY v1: CR without LF');
      end = i;
      break;
    }
    // Printable ASCII only: a NUL, LF or UTF-8 byte means this is not a balancer talking.
    if (b < 0x20 || b > 0x7e) return invalid('PROXY v1: unexpected byte in the header line');
  }
  if (end < 0) return buf.length >= V1_MAX_LENGTH ? invalid(`PROXY v1: no CRLF within ${V1_MAX_LENGTH} bytes`) : { status: 'incomplete' };
  if (end + 2 > V1_MAX_LENGTH) return invalid(`PROXY v1: no CRLF within ${V1_MAX_LENGTH} bytes`);

  const length = end + 2;
  const rest = buf.subarray(length);
  const fields = buf.toString('latin1', 0, end).split(' ');
  const proto = fields[1];
  // The spec: with UNKNOWN the rest of the line is to be ignored and the real endpoints used.
  if (proto === 'UNKNOWN') return { status: 'done', header: { version: 1, addresses: null, length }, rest };
  if (proto !== 'TCP4' && proto !== 'TCP6') return invalid('PROXY v1: protocol is not TCP4, TCP6 or UNKNOWN');
  if (fields.length !== 6) return invalid('PROXY v1: expected "PROXY TCPx src dst sport dport"');
  const [, , src, dst, sportText, dportText] = fields as [string, string, string, string, string, string];
  const isFamily = proto === 'TCP4' ? net.isIPv4 : (a: string) => net.isIPv6(a) && !a.includes('%');
  if (!isFamily(src) || !isFamily(dst)) return invalid(`PROXY v1: address is not ${proto === 'TCP4' ? 'IPv4' : 'IPv6'}`);
  const sport = parsePort(sportText);
  const dport = parsePort(dportText);
  if (sport === null || dport === null) return invalid('PROXY v1: bad port');
  const ip = (a: string) => (proto === 'TCP4' ? a : canonicalIPv6(a));
  return {
    status: 'done',
    header: { version: 1, addresses: { source: { ip: ip(src), port: sport }, destination: { ip: ip(dst), port: dport } }, length },
    rest,
  };
}

function ipv6At(buf: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + 2 * i).toString(16));
  return canonicalIPv6(groups.join(':'));
}

function parseV2(buf: Buffer, maxLength: number): ProxyParseResult {
  if (!prefixMatches(buf, V2_SIGNATURE)) return invalid('not a PROXY v2 header');
  if (buf.length < V2_FIXED) return { status: 'incomplete' };
  const verCmd = buf[12]!;
  const family = buf[13]!;
  const blockLength = buf.readUInt16BE(14);
  const length = V2_FIXED + blockLength;
  if (verCmd >> 4 !== 2) return invalid('PROXY v2: version is not 2');
  const command = verCmd & 0x0f;
  // The spec: receivers must drop connections presenting unassigned commands.
  if (command !== 0x0 && command !== 0x1) return invalid('PROXY v2: unknown command');
  if (length > maxLength) return invalid(`PROXY v2: header of ${length} bytes exceeds ${maxLength}`);
  if (buf.length < length) return { status: 'incomplete' };
  const rest = buf.subarray(length);
  // LOCAL: the balancer speaks for itself (health checks); the block, family included, is discarded.
  if (command === 0x0) return { status: 'done', header: { version: 2, addresses: null, length }, rest };

  let addressLength: number;
  switch (family) {
    case 0x00: // UNSPEC: no address to take; the spec lets the receiver fall back to the real endpoints
      addressLength = 0;
      break;
    case 0x11: // TCP over IPv4
      addressLength = 12;
      break;
    case 0x21: // TCP over IPv6
      addressLength = 36;
      break;
    case 0x31: // UNIX stream: paths, no client address
      addressLength = 216;
      break;
    default:
      return invalid(`PROXY v2: unsupported family/transport 0x${family.toString(16).padStart(2, '0')}`);
  }
  if (blockLength < addressLength) return invalid('PROXY v2: address block shorter than its family needs');
  // TLVs are skipped, but a block whose TLVs overrun it is corrupt, not something to guess around.
  for (let off = V2_FIXED + addressLength; off < length; ) {
    if (off + 3 > length) return invalid('PROXY v2: truncated TLV');
    off += 3 + buf.readUInt16BE(off + 1);
    if (off > length) return invalid('PROXY v2: TLV overruns the header');
  }
  const a = V2_FIXED;
  let addresses: ProxyHeader['addresses'] = null;
  if (family === 0x11) {
    const v4 = (o: number) => `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`;
    addresses = { source: { ip: v4(a), port: buf.readUInt16BE(a + 8) }, destination: { ip: v4(a + 4), port: buf.readUInt16BE(a + 10) } };
  } else if (family === 0x21) {
    addresses = { source: { ip: ipv6At(buf, a), port: buf.readUInt16BE(a + 32) }, destination: { ip: ipv6At(buf, a + 16), port: buf.readUInt16BE(a + 34) } };
  }
  return { status: 'done', header: { version: 2, addresses, length }, rest };
}

/** Parses a header at the start of `buf`; 'incomplete' until enough bytes are there to decide. */
export function parseProxyHeader(buf: Buffer, maxV2Length = DEFAULT_V2_MAX_LENGTH): ProxyParseResult {
  if (buf.length === 0) return { status: 'incomplete' };
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf, maxV2Length);
  return invalid('no PROXY header');
}

/**
 * Incremental: feed chunks as they arrive. Buffers at most the header bound plus one chunk, since
 * a verdict of 'invalid' comes as soon as the bound is passed (or earlier, at the first wrong byte).
 */
export class ProxyHeaderParser {
  private buffered: Buffer = Buffer.alloc(0);
  private result: ProxyParseResult = { status: 'incomplete' };

  constructor(private readonly maxV2Length = DEFAULT_V2_MAX_LENGTH) {}

  push(chunk: Buffer): ProxyParseResult {
    if (this.result.status !== 'incomplete') throw new Error('PROXY header already parsed');
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.result = parseProxyHeader(this.buffered, this.maxV2Length);
    if (this.result.status !== 'incomplete') this.buffered = Buffer.alloc(0);
    return this.result;
  }
}

export class ProxyHeaderError extends Error {
  override readonly name = 'ProxyHeaderError';
}

export interface ReadProxyHeaderOptions {
  timeoutMs?: number;
  maxV2Length?: number;
}

/**
 * Reads the header off a fresh socket. On success the bytes that came after it are unshifted, so
 * whoever takes the socket next (a session, or a TLSSocket wrapping it, which drains the readable
 * buffer into the handshake) sees the stream exactly as the client sent it. Rejects with
 * ProxyHeaderError on a malformed, missing or late header; closing the socket is the caller's call.
 */
export function readProxyHeader(socket: net.Socket, options: ReadProxyHeaderOptions = {}): Promise<ProxyHeader> {
  const parser = new ProxyHeaderParser(options.maxV2Length);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`no complete PROXY header within ${options.timeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS} ms`), options.timeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS);
    // 'readable' rather than 'data': removing the listener afterwards returns the stream to its
    // initial, not-yet-flowing state, so a session attaching 'data' later loses nothing.
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        const r = parser.push(chunk);
        if (r.status === 'incomplete') continue;
        if (r.status === 'invalid') return fail(r.reason);
        cleanup();
        if (r.rest.length > 0) socket.unshift(r.rest);
        return resolve(r.header);
      }
    };
    const onEnd = () => fail('connection ended before the PROXY header was complete');
    const onClose = () => fail('connection closed before the PROXY header was complete');
    const onError = (err: Error) => fail(`socket error before the PROXY header was complete: ${err.message}`);
    const fail = (reason: string) => {
      cleanup();
      reject(new ProxyHeaderError(reason));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
  });
}
