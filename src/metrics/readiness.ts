import net from 'node:net';

/** One thing /readyz checks: resolves when it is reachable, rejects (or takes too long) otherwise. */
export interface ReadinessCheck {
  name: string;
  probe(): Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  /** The names of the checks that failed or timed out, in check order. */
  failed: string[];
}

export interface ReadinessOptions {
  /** Each check's deadline. */
  timeoutMs?: number;
  /** How long an answer is reused: a scrape storm costs the upstreams one connection per this. */
  cacheMs?: number;
}

const DEFAULT_TIMEOUT_MS = 2_000;
const DEFAULT_CACHE_MS = 2_000;

/** A TCP connection to host:port, closed as soon as it is accepted. */
export function tcpProbe(host: string, port: number): () => Promise<void> {
  return () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', (err) => {
        socket.destroy();
        reject(err);
      });
    });
}

function withDeadline(probe: () => Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    let running: Promise<void>;
    try {
      running = probe();
    } catch {
      running = Promise.reject(new Error('probe threw'));
    }
    running.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(false);
      },
    );
  });
}

/** Runs the checks in parallel, each under its deadline; callers within cacheMs share one answer. */
export class Readiness {
  /** The latest answer; `at` is null while it is being found (callers then share it too). */
  private last: { at: number | null; report: Promise<ReadinessReport> } | null = null;

  constructor(
    private readonly checks: readonly ReadinessCheck[],
    private readonly options: ReadinessOptions = {},
  ) {}

  check(): Promise<ReadinessReport> {
    const last = this.last;
    if (last && (last.at === null || performance.now() - last.at < (this.options.cacheMs ?? DEFAULT_CACHE_MS))) return last.report;
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const entry: { at: number | null; report: Promise<ReadinessReport> } = { at: null, report: Promise.resolve({ ready: false, failed: [] }) };
    entry.report = Promise.all(this.checks.map((c) => withDeadline(() => c.probe(), timeoutMs))).then((oks) => {
      entry.at = performance.now();
      const failed = this.checks.filter((_, i) => !oks[i]).map((c) => c.name);
      return { ready: failed.length === 0, failed };
    });
    this.last = entry;
    return entry.report;
  }
}
