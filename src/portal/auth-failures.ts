const AUTH_FAILURE_WINDOW_MS = 60_000;
/** Bounds the memory an address-rotating scanner can make the failure counter use. */
const MAX_TRACKED_IPS = 10_000;

/** Fixed-window count of failed bearer tokens per client IP, in this process only. */
export class AuthFailures {
  private readonly byIp = new Map<string, { start: number; count: number }>();

  constructor(private readonly limit: number) {}

  private now(): number {
    return performance.now();
  }

  /** Milliseconds until the IP may try again, or 0 when it is not limited. */
  blockedFor(ip: string): number {
    const e = this.byIp.get(ip);
    if (!e) return 0;
    const left = e.start + AUTH_FAILURE_WINDOW_MS - this.now();
    return left > 0 && e.count >= this.limit ? left : 0;
  }

  record(ip: string): number {
    const now = this.now();
    let e = this.byIp.get(ip);
    if (!e || now - e.start >= AUTH_FAILURE_WINDOW_MS) {
      if (this.byIp.size >= MAX_TRACKED_IPS) this.prune(now);
      e = { start: now, count: 0 };
      this.byIp.delete(ip);
      this.byIp.set(ip, e);
    }
    e.count++;
    return e.count;
  }

  private prune(now: number): void {
    for (const [ip, e] of this.byIp) if (now - e.start >= AUTH_FAILURE_WINDOW_MS) this.byIp.delete(ip);
    // Still full: forget the oldest windows (Map keeps insertion order).
    for (const ip of this.byIp.keys()) {
      if (this.byIp.size < MAX_TRACKED_IPS) break;
      this.byIp.delete(ip);
    }
  }
}

