/** Which cap refused a connection: the config key that sets it. */
export type ConnectionCap = 'maxConnections' | 'maxConnectionsPerIp';

export interface ConnectionLimitSettings {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export type Admission = { admitted: true; release: () => void } | { admitted: false; cap: ConnectionCap; limit: number };

/**
 * Client connections open at once in this process, in total and per client IP, shared by every
 * listener (an address's IMAP, POP3 and SMTP connections count together). In memory: each
 * process protects its own sockets and file descriptors.
 */
export class ConnectionLimits {
  private total = 0;
  private readonly byIp = new Map<string, number>();

  constructor(private readonly settings: ConnectionLimitSettings) {}

  /** How many connections are open, in total or from one IP. */
  open(ip?: string): number {
    return ip === undefined ? this.total : (this.byIp.get(ip) ?? 0);
  }

  /** Takes a place for a connection from ip, or says which cap is full. release() is idempotent. */
  admit(ip: string): Admission {
    const { maxConnections, maxConnectionsPerIp } = this.settings;
    if (this.total >= maxConnections) return { admitted: false, cap: 'maxConnections', limit: maxConnections };
    const fromIp = this.open(ip);
    if (fromIp >= maxConnectionsPerIp) return { admitted: false, cap: 'maxConnectionsPerIp', limit: maxConnectionsPerIp };
    this.total++;
    this.byIp.set(ip, fromIp + 1);
    let released = false;
    return {
      admitted: true,
      release: () => {
        if (released) return;
        released = true;
        this.total--;
        const n = this.open(ip) - 1;
        if (n > 0) this.byIp.set(ip, n);
        else this.byIp.delete(ip);
      },
    };
  }
}
