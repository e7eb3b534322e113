import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  DEFAULT_V2_MAX_LENGTH,
  parseProxyHeader,
  ProxyHeaderError,
  ProxyHeaderParser,
  readProxyHeader,
  V1_MAX_LENGTH,
  type ProxyParseResult,
} from '../../src/net/proxy-protocol.js';
import { proxyV1, proxyV2, V2_SIGNATURE } from '../helpers/proxy-forwarder.js';

const PAYLOAD = Buffer.from('a1 CAPABILITY\r\n\x00\xff binary tail', 'latin1');

function done(r: ProxyParseResult) {
  assert.equal(r.status, 'done', r.status === 'invalid' ? r.reason : 'incomplete');
  return r as Extract<ProxyParseResult, { status: 'done' }>;
}

function invalid(input: Buffer | string): string {
  const r = parseProxyHeader(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  assert.equal(r.status, 'invalid', `expected invalid for ${JSON.stringify(input.toString())}, got ${r.status}`);
  return (r as { reason: string }).reason;
}

/** Feeds the header one byte at a time (each prefix must be 'incomplete'), the last byte with `trailer`. */
function byteByByte(header: Buffer, trailer = Buffer.alloc(0)): ProxyParseResult {
  const p = new ProxyHeaderParser();
  for (let i = 0; i < header.length - 1; i++) assert.deepEqual(p.push(header.subarray(i, i + 1)), { status: 'incomplete' }, `after ${i + 1} bytes`);
  return p.push(Buffer.concat([header.subarray(header.length - 1), trailer]));
}

/** A TLV whose content is what real balancers send: ALPN, SNI, NOOP padding, AWS VPC endpoint id. */
const TLVS = [
  { type: 0x01, value: Buffer.from('imap') },
  { type: 0x02, value: Buffer.from('mail.example.com') },
  { type: 0x04, value: Buffer.alloc(5) },
  { type: 0xea, value: Buffer.from('\x01vpce-0123456789abcdef0', 'latin1') },
];

describe('PROXY protocol v1', () => {
  it('reads TCP4 and returns the bytes after the header intact', () => {
    const r = done(parseProxyHeader(Buffer.concat([proxyV1('203.0.113.7', '192.0.2.10', 51234, 993), PAYLOAD])));
    assert.deepEqual(r.header, {
      version: 1,
      addresses: { source: { ip: '203.0.113.7', port: 51234 }, destination: { ip: '192.0.2.10', port: 993 } },
      length: 45,
    });
    assert.deepEqual(r.rest, PAYLOAD);
  });

  it('reads TCP6 in its canonical spelling and unwraps IPv4-mapped addresses as clientIpOf does', () => {
    const r = done(parseProxyHeader(Buffer.from('PROXY TCP6 2001:DB8:0:0:0:0:0:7 2001:db8::1 0 65535\r\n')));
    assert.deepEqual(r.header.addresses, { source: { ip: '2001:db8::7', port: 0 }, destination: { ip: '2001:db8::1', port: 65535 } });
    assert.equal(r.rest.length, 0);
    const mapped = done(parseProxyHeader(Buffer.from('PROXY TCP6 ::ffff:203.0.113.7 ::ffff:c000:20a 40000 993\r\n')));
    assert.deepEqual(mapped.header.addresses, { source: { ip: '203.0.113.7', port: 40000 }, destination: { ip: '192.0.2.10', port: 993 } });
  });

  it('takes UNKNOWN (with or without addresses) as "use the connection\'s own endpoints"', () => {
    assert.deepEqual(done(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\nx'))).header, { version: 1, addresses: null, length: 15 });
    const r = done(parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\nrest')));
    assert.equal(r.header.addresses, null);
    assert.equal(r.rest.toString(), 'rest');
  });

  it('reads a header split into 1-byte chunks and keeps what followed in the last one', () => {
    const r = done(byteByByte(proxyV1('203.0.113.7', '192.0.2.10', 51234, 993), Buffer.from('X')));
    assert.equal(r.header.addresses?.source.ip, '203.0.113.7');
    assert.equal(r.rest.toString(), 'X');
    const exact = proxyV1('2001:db8::7', '2001:db8::1', 1, 2);
    assert.equal(done(byteByByte(exact)).rest.length, 0);
  });

  it('accepts a line of exactly 107 bytes and refuses a longer one as soon as byte 107 has no CRLF', () => {
    const line = (n: number) => Buffer.from(`PROXY UNKNOWN ${'a'.repeat(n - 'PROXY UNKNOWN '.length - 2)}\r\n`);
    assert.equal(done(parseProxyHeader(line(V1_MAX_LENGTH))).header.length, V1_MAX_LENGTH);
    assert.match(invalid(line(V1_MAX_LENGTH + 1)), /CRLF within 107/);
    // No terminator at all: decided at the bound, not after buffering whatever the peer sends.
    const p = new ProxyHeaderParser();
    let r = p.push(Buffer.from('PROXY TCP4 '));
    let fed = 'PROXY TCP4 '.length;
    while (r.status === 'incomplete') {
      r = p.push(Buffer.from('1'));
      fed++;
    }
    assert.equal(r.status, 'invalid');
    assert.equal(fed, V1_MAX_LENGTH);
  });

  it('refuses malformed lines', () => {
    const bad = [
      'PROXY TCP4 203.0.113.7 192.0.2.10 51234\r\n', // a field missing
      'PROXY TCP4 203.0.113.7 192.0.2.10 51234 993 extra\r\n',
      'PROXY TCP4  203.0.113.7 192.0.2.10 51234 993\r\n', // two spaces
      'PROXY tcp4 203.0.113.7 192.0.2.10 51234 993\r\n',
      'PROXY UDP4 203.0.113.7 192.0.2.10 51234 993\r\n',
      'PROXY TCP4 2001:db8::7 192.0.2.10 51234 993\r\n', // family mismatch
      'PROXY TCP6 203.0.113.7 2001:db8::1 51234 993\r\n',
      'PROXY TCP6 fe80::1%eth0 2001:db8::1 51234 993\r\n', // zone ids are local to the sender
      'PROXY TCP4 203.0.113.007 192.0.2.10 51234 993\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.10 65536 993\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.10 051234 993\r\n', // leading zero
      'PROXY TCP4 203.0.113.7 192.0.2.10 -1 993\r\n',
      'PROXY TCP4 203.0.113.7 192.0.2.10 51234 993\n', // LF without CR
      'PROXY TCP4 203.0.113.7 192.0.2.10 51234 993\rX',
      'PROXY TCP4 203.0.113.7\x00192.0.2.10 51234 993\r\n',
      'PROXY\r\n',
      'PROXY \r\n',
    ];
    for (const line of bad) invalid(line);
  });
});

describe('PROXY protocol v2', () => {
  it('reads IPv4 with TLVs and returns the bytes after the header intact', () => {
    const header = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 51234, dport: 993, tlvs: TLVS });
    const r = done(parseProxyHeader(Buffer.concat([header, PAYLOAD])));
    assert.deepEqual(r.header, {
      version: 2,
      addresses: { source: { ip: '203.0.113.7', port: 51234 }, destination: { ip: '192.0.2.10', port: 993 } },
      length: header.length,
    });
    assert.deepEqual(r.rest, PAYLOAD);
  });

  it('reads IPv6, canonical and IPv4-mapped unwrapped', () => {
    const r = done(parseProxyHeader(proxyV2({ command: 'proxy', src: '2001:db8:0:0:0:0:0:7', dst: '2001:db8::1', sport: 1, dport: 993 })));
    assert.deepEqual(r.header.addresses, { source: { ip: '2001:db8::7', port: 1 }, destination: { ip: '2001:db8::1', port: 993 } });
    const mapped = done(parseProxyHeader(proxyV2({ command: 'proxy', src: '::ffff:cb00:7107', dst: '::1', sport: 2, dport: 993, tlvs: TLVS })));
    assert.deepEqual(mapped.header.addresses, { source: { ip: '203.0.113.7', port: 2 }, destination: { ip: '::1', port: 993 } });
  });

  it('takes LOCAL (health checks), TLVs and all, as "use the connection\'s own endpoints"', () => {
    const header = proxyV2({ command: 'local', tlvs: TLVS });
    const r = done(parseProxyHeader(Buffer.concat([header, PAYLOAD])));
    assert.deepEqual(r.header, { version: 2, addresses: null, length: header.length });
    assert.deepEqual(r.rest, PAYLOAD);
  });

  it('takes PROXY with family UNSPEC as carrying no address', () => {
    const h = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x00, 0x00, 0x00])]);
    assert.equal(done(parseProxyHeader(h)).header.addresses, null);
  });

  it('reads a header split into 1-byte chunks', () => {
    const header = proxyV2({ command: 'proxy', src: '2001:db8::7', dst: '2001:db8::1', sport: 51234, dport: 993, tlvs: TLVS });
    const r = done(byteByByte(header, Buffer.from('Z')));
    assert.equal(r.header.addresses?.source.ip, '2001:db8::7');
    assert.equal(r.rest.toString(), 'Z');
  });

  it('refuses a header longer than the bound as soon as its length field is in', () => {
    const big = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 1, dport: 2, tlvs: [{ type: 0xe0, value: Buffer.alloc(DEFAULT_V2_MAX_LENGTH) }] });
    assert.match(invalid(big.subarray(0, 16)), /exceeds 4096/);
    const p = new ProxyHeaderParser(64);
    const ok = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 1, dport: 2 });
    assert.equal(p.push(ok).status, 'done', 'a 28-byte header fits a 64-byte bound');
  });

  it('waits for a truncated header rather than guessing', () => {
    const header = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 1, dport: 2, tlvs: TLVS });
    for (const n of [1, 11, 12, 15, 16, 27, header.length - 1]) assert.deepEqual(parseProxyHeader(header.subarray(0, n)), { status: 'incomplete' }, `${n} bytes`);
  });

  it('refuses malformed headers', () => {
    const good = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 1, dport: 2 });
    const patched = (offset: number, byte: number) => {
      const b = Buffer.from(good);
      b[offset] = byte;
      return b;
    };
    assert.match(invalid(patched(6, 0x00)), /not a PROXY v2/); // signature
    assert.match(invalid(patched(12, 0x11)), /version/);
    assert.match(invalid(patched(12, 0x22)), /command/);
    assert.match(invalid(patched(13, 0x12)), /family/); // UDP over IPv4
    assert.match(invalid(patched(13, 0x22)), /family/);
    assert.match(invalid(patched(13, 0x41)), /family/);
    // A family whose address block does not fit the announced length.
    const short = Buffer.from(good);
    short.writeUInt16BE(8, 14);
    assert.match(invalid(short.subarray(0, 24)), /shorter/);
    // A TLV announcing more bytes than the block holds, and one cut after its type byte.
    const overrun = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 1, dport: 2, tlvs: [{ type: 0x01, value: Buffer.from('imap') }] });
    overrun.writeUInt16BE(5, overrun.length - 6);
    assert.match(invalid(overrun), /overruns/);
    const cut = Buffer.concat([good, Buffer.from([0x04])]);
    cut.writeUInt16BE(13, 14);
    assert.match(invalid(cut), /truncated TLV/);
  });
});

describe('PROXY protocol: what is not a header', () => {
  it('refuses garbage at the first byte that cannot start a header', () => {
    assert.match(invalid('a'), /no PROXY header/);
    assert.match(invalid('a1 LOGIN alice secret\r\n'), /no PROXY header/);
    assert.match(invalid(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])), /no PROXY header/); // a TLS ClientHello
    assert.match(invalid('GET / HTTP/1.1\r\n'), /no PROXY header/);
    assert.match(invalid('PROXZ'), /not a PROXY v1/);
    assert.match(invalid('\r\n\r\nQ'), /not a PROXY v2/);
    assert.deepEqual(parseProxyHeader(Buffer.alloc(0)), { status: 'incomplete' });
  });

  it('refuses to be fed after its verdict', () => {
    const p = new ProxyHeaderParser();
    p.push(Buffer.from('x'));
    assert.throws(() => p.push(Buffer.from('y')));
  });
});

describe('readProxyHeader on a socket', () => {
  /** A connected loopback pair: [the server's socket, the client's]. */
  async function pair(): Promise<{ server: net.Socket; client: net.Socket; close(): Promise<void> }> {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
    const server = await accepted;
    server.on('error', () => undefined);
    client.on('error', () => undefined);
    return {
      server,
      client,
      close: () =>
        new Promise<void>((r) => {
          server.destroy();
          client.destroy();
          srv.close(() => r());
        }),
    };
  }

  it('leaves the bytes after the header for whoever reads the socket next, even much later', async () => {
    const p = await pair();
    try {
      const header = proxyV2({ command: 'proxy', src: '203.0.113.7', dst: '192.0.2.10', sport: 51234, dport: 993, tlvs: TLVS });
      const big = Buffer.alloc(100_000, 'm');
      p.client.write(header.subarray(0, 5));
      await new Promise((r) => setTimeout(r, 20));
      p.client.write(Buffer.concat([header.subarray(5), PAYLOAD]));
      p.client.write(big);
      const h = await readProxyHeader(p.server, { timeoutMs: 2000 });
      assert.equal(h.addresses?.source.ip, '203.0.113.7');
      // A session attaches its reader only after some asynchronous set-up.
      await new Promise((r) => setTimeout(r, 50));
      const got: Buffer[] = [];
      let n = 0;
      await new Promise<void>((resolve) =>
        p.server.on('data', (d: Buffer) => {
          got.push(d);
          n += d.length;
          if (n >= PAYLOAD.length + big.length) resolve();
        }),
      );
      assert.deepEqual(Buffer.concat(got), Buffer.concat([PAYLOAD, big]));
    } finally {
      await p.close();
    }
  });

  it('rejects a header not complete in time, a connection ended early, and garbage', async () => {
    const slow = await pair();
    slow.client.write('PROXY TCP4 203.0.113.7');
    await assert.rejects(readProxyHeader(slow.server, { timeoutMs: 100 }), (e: unknown) => e instanceof ProxyHeaderError && /within 100 ms/.test(e.message));
    await slow.close();

    const ended = await pair();
    ended.client.end('PROXY TCP4 203.0.113.7 ');
    await assert.rejects(readProxyHeader(ended.server, { timeoutMs: 2000 }), /ended before/);
    await ended.close();

    const garbage = await pair();
    garbage.client.write('a1 LOGIN alice secret\r\n');
    await assert.rejects(readProxyHeader(garbage.server, { timeoutMs: 2000 }), /no PROXY header/);
    await garbage.close();
  });
});
