import net from 'node:net';

/** A PROXY v1 line: "PROXY TCP4 src dst sport dport\r\n". */
export function proxyV1(src: string, dst: string, sport: number, dport: number): Buffer {
  const family = net.isIPv6(src) ? 'TCP6' : 'TCP4';
  return Buffer.from(`PROXY ${family} ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1');
}

export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

export interface Tlv {
  type: number;
  value: Buffer;
}

function tlvBytes(tlvs: Tlv[]): Buffer {
  return Buffer.concat(
    tlvs.map((t) => {
      const head = Buffer.alloc(3);
      head[0] = t.type;
      head.writeUInt16BE(t.value.length, 1);
      return Buffer.concat([head, t.value]);
    }),
  );
}

function ipv6Bytes(ip: string): Buffer {
  // Expand "::" then write the eight groups; only test-friendly textual forms are needed here.
  const [head = '', tail] = ip.split('::');
  const a = head ? head.split(':') : [];
  const b = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? a : [...a, ...Array<string>(8 - a.length - b.length).fill('0'), ...b];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 2 * i));
  return out;
}

/** A PROXY v2 header (command PROXY over TCP, or LOCAL), with optional TLVs. */
export function proxyV2(
  o: { command: 'proxy'; src: string; dst: string; sport: number; dport: number; tlvs?: Tlv[] } | { command: 'local'; tlvs?: Tlv[] },
): Buffer {
  let family = 0x00;
  let addresses = Buffer.alloc(0);
  if (o.command === 'proxy') {
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(o.sport, 0);
    ports.writeUInt16BE(o.dport, 2);
    if (net.isIPv4(o.src)) {
      family = 0x11;
      addresses = Buffer.concat([Buffer.from(o.src.split('.').map(Number)), Buffer.from(o.dst.split('.').map(Number)), ports]);
    } else {
      family = 0x21;
      addresses = Buffer.concat([ipv6Bytes(o.src), ipv6Bytes(o.dst), ports]);
    }
  }
  const block = Buffer.concat([addresses, tlvBytes(o.tlvs ?? [])]);
  const fixed = Buffer.alloc(4);
  fixed[0] = o.command === 'proxy' ? 0x21 : 0x20;
  fixed[1] = family;
  fixed.writeUInt16BE(block.length, 2);
  return Buffer.concat([V2_SIGNATURE, fixed, block]);
}

export interface ProxyForwarder {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  stop(): Promise<void>;
}

export interface ForwarderOptions {
  target: { host: string; port: number };
  /** The header to prepend for this client connection; null sends none. */
  header: (client: net.Socket) => Buffer | null;
  /**
   * 'first-chunk': wait for the client's first bytes and send them in the same write as the
   * header (only for protocols where the client speaks first, such as implicit TLS), so the
   * server receives header and payload in one segment and must hand the excess on.
   * 'separate' (default): the header on connect, as HAProxy does.
   */
  coalesce?: 'first-chunk' | 'separate';
}

/** What a TCP load balancer in PROXY mode does: prepend one header, then pipe bytes both ways. */
export async function startProxyForwarder(o: ForwarderOptions): Promise<ProxyForwarder> {
  const open = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(o.target.port, o.target.host);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => (s === client ? upstream : client).destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    const header = o.header(client);
    const pipe = () => {
      client.pipe(upstream);
      upstream.pipe(client);
    };
    if (o.coalesce === 'first-chunk') {
      client.once('data', (first: Buffer) => {
        upstream.write(header ? Buffer.concat([header, first]) : first);
        pipe();
      });
    } else {
      if (header) upstream.write(header);
      pipe();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
