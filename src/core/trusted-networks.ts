import net from 'node:net';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** "::ffff:192.0.2.1" (a v4 client on a dual-stack socket) as the plain v4 address. */
export function unmapIp(ip: string): string {
  return ip.slice(0, 7).toLowerCase() === '::ffff:' && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/**
 * The one spelling of a client address, as the listeners give it: IPv4-mapped IPv6 unwrapped, IPv6
 * compressed (RFC 5952). Null when the text is not an address.
 */
export function canonicalIp(text: string): string | null {
  const ip = unmapIp(text.trim());
  if (net.isIPv4(ip)) return ip;
  if (!net.isIPv6(ip)) return null;
  return unmapIp(new net.SocketAddress({ address: ip, family: 'ipv6' }).address);
}

/**
 * "10.0.0.0/8", "2001:db8::/32", a bare address (one host), or an IPv4-mapped range
 * ("::ffff:10.0.0.0/104", taken as 10.0.0.0/8). Null when it is none of these.
 */
export function parseCidr(text: string): Cidr | null {
  const m = /^([^/\s]+)(?:\/(\d{1,3}))?$/.exec(text.trim());
  if (!m?.[1]) return null;
  let address = m[1];
  let prefix = m[2] === undefined ? null : Number(m[2]);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] && net.isIPv4(mapped[1])) {
    if (prefix !== null && prefix < 96) return null;
    address = mapped[1];
    prefix = prefix === null ? null : prefix - 96;
  }
  const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
  if (!family) return null;
  const max = family === 'ipv4' ? 32 : 128;
  if (prefix === null) prefix = max;
  if (prefix > max) return null;
  return { address, prefix, family };
}

/** daemonOtp.trustedNetworks: client addresses that skip the tap after a correct password. */
export class TrustedNetworks {
  private readonly list = new net.BlockList();

  /** Every entry must parse (the config schema checked them); a bad one throws. */
  constructor(readonly cidrs: readonly string[]) {
    for (const text of cidrs) {
      const c = parseCidr(text);
      if (!c) throw new Error(`not a network: ${text}`);
      this.list.addSubnet(c.address, c.prefix, c.family);
    }
  }

  /** True when the (real, after PROXY protocol) client address is in one of the networks. */
  has(clientIp: string): boolean {
    if (this.cidrs.length === 0) return false;
    const ip = canonicalIp(clientIp);
    if (ip === null) return false;
    return this.list.check(ip, net.isIPv4(ip) ? 'ipv4' : 'ipv6');
  }
}
