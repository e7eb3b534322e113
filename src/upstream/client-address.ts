import net from 'node:net';

/**
 * "::ffff:192.0.2.1" (a v4 client on a dual-stack listener) as the plain v4 address the upstream
 * logs and matches against its trusted networks; any other address as it is.
 */
export function plainIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** The XCLIENT ADDR form (SMTP, Postfix XCLIENT_README): IPv4 plain, IPv6 with the "IPV6:" prefix. */
export function xclientAddr(ip: string): string {
  const plain = plainIp(ip);
  return net.isIPv6(plain) ? `IPV6:${plain}` : plain;
}
