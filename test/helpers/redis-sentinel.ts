import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePorts } from './free-port.js';
import { redisTlsArgs, spawnRedisProcess, stopRedisProcess } from './redis-server.js';

export interface SentinelSetHandle {
  /** "127.0.0.1:port" of each sentinel, as store.sentinels takes them. */
  sentinels: string[];
  name: string;
  /** The port of the master the sentinels name now. */
  masterPort(): Promise<number>;
  /** The ports of the replicas the sentinels know of now. */
  replicaPorts(): Promise<number[]>;
  /** One command against one server of the set, by a client of its own. */
  readFrom<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T>;
  /** SIGKILL of the current master (no shutdown, no last words to the replicas); returns its port. */
  killMaster(): Promise<number>;
  /** Resolves once the sentinels name a master other than `oldPort` and it accepts writes. */
  waitForNewMaster(oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export interface SentinelSetOptions {
  /** Sentinel down-after-milliseconds: how long a silent master counts as up. */
  downAfterMs?: number;
  failoverTimeoutMs?: number;
  /** requirepass (and masterauth) of the master and replicas [none]. */
  password?: string;
  /** requirepass of the sentinels themselves [none]. */
  sentinelPassword?: string;
  /**
   * TLS everywhere: each server and sentinel also listens with TLS, replication and the sentinels'
   * links use it, and the sentinels name the servers' TLS ports. Plain ports stay for the helper.
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

const NAME = 'mailotp-test';
const READY_TIMEOUT_MS = 20_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A short-lived client for the helper's own checks; it never retries, so a dead server fails fast. */
async function ask<T>(port: number, fn: (r: Redis) => Promise<T>, password?: string): Promise<T> {
  const r = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`redis sentinel set: ${what} not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Flat ["k","v",...] replies of SENTINEL MASTER into an object. */
function fields(flat: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  const a = flat as string[];
  for (let i = 0; i + 1 < a.length; i += 2) out[a[i]!] = a[i + 1]!;
  return out;
}

/**
 * One master, two replicas and three sentinels (quorum 2), all real redis-server processes on free
 * ports of 127.0.0.1, with short detection and failover times. Always stop() it in after().
 */
export async function startSentinelSet(opts: SentinelSetOptions = {}): Promise<SentinelSetHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'mailotp-sentinel-'));
  const ports = await freePorts(opts.tls ? 12 : 6);
  const [masterPort, r1, r2, s1, s2, s3] = ports as [number, number, number, number, number, number];
  // The port each server and sentinel is known by (its TLS port with tls), and the plain one the helper asks on.
  const known = new Map(ports.slice(0, 6).map((p, i) => [p, opts.tls ? ports[6 + i]! : p]));
  const plainOf = new Map([...known].map(([plain, k]) => [k, plain]));
  const tlsArgs = (plain: number) => (opts.tls ? [...redisTlsArgs(known.get(plain)!, opts.tls), '--tls-replication', 'yes'] : []);
  const servers = new Map<number, ChildProcess>();
  const sentinels: ChildProcess[] = [];
  // --dir: a replica's full sync writes an RDB file, which must not land in the working directory.
  const auth = opts.password ? ['--requirepass', opts.password, '--masterauth', opts.password] : [];
  const dataArgs = ['--save', '', '--appendonly', 'no', '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0', '--dir', dir, ...auth];
  // Asked by the port the sentinels name (the TLS one with tls): the helper talks to its plain twin.
  const server = <T>(port: number, fn: (r: Redis) => Promise<T>) => ask(plainOf.get(port) ?? port, fn, opts.password);
  const sentinel = <T>(port: number, fn: (r: Redis) => Promise<T>) => ask(port, fn, opts.sentinelPassword);
  const stopAll = async (): Promise<void> => {
    await Promise.all([...sentinels, ...servers.values()].map(stopRedisProcess));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    servers.set(known.get(masterPort)!, await spawnRedisProcess(masterPort, [...dataArgs, ...tlsArgs(masterPort)]));
    for (const port of [r1, r2]) {
      servers.set(known.get(port)!, await spawnRedisProcess(port, [...dataArgs, ...tlsArgs(port), '--replicaof', '127.0.0.1', String(known.get(masterPort))]));
    }
    await until('both replicas in sync', () => server(known.get(masterPort)!, async (r) => ((await r.info('replication')).match(/state=online/g) ?? []).length === 2), READY_TIMEOUT_MS);
    for (const port of [s1, s2, s3]) {
      // Sentinel rewrites its file as it learns the set: one writable file per sentinel.
      const file = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `sentinel monitor ${NAME} 127.0.0.1 ${known.get(masterPort)} 2`,
          `sentinel down-after-milliseconds ${NAME} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${NAME} ${opts.failoverTimeoutMs ?? 5000}`,
          `sentinel parallel-syncs ${NAME} 2`,
          ...(opts.password ? [`sentinel auth-pass ${NAME} ${opts.password}`] : []),
          // A sentinel's requirepass is also what it sends to the other sentinels.
          ...(opts.sentinelPassword ? [`requirepass ${opts.sentinelPassword}`] : []),
          '',
        ].join('\n'),
      );
      sentinels.push(await spawnRedisProcess(port, [file, '--sentinel', ...tlsArgs(port)]));
    }
    // A failover needs every sentinel to know the replicas and the other sentinels (hello messages).
    await until(
      'sentinels to discover each other and the replicas',
      async () => {
        for (const port of [s1, s2, s3]) {
          const m = fields(await sentinel(port, (r) => r.call('SENTINEL', 'MASTER', NAME)));
          if (m['num-slaves'] !== '2' || m['num-other-sentinels'] !== '2') return false;
        }
        return true;
      },
      READY_TIMEOUT_MS,
    );
  } catch (err) {
    await stopAll();
    throw err;
  }

  const masterPortNow = async (): Promise<number> => {
    const addr = (await sentinel(s1, (r) => r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME))) as [string, string];
    return Number(addr[1]);
  };
  return {
    sentinels: [s1, s2, s3].map((p) => `127.0.0.1:${known.get(p)}`),
    name: NAME,
    masterPort: masterPortNow,
    async replicaPorts() {
      const replicas = (await sentinel(s1, (r) => r.call('SENTINEL', 'REPLICAS', NAME))) as unknown[];
      return replicas.map((flat) => Number(fields(flat)['port']));
    },
    readFrom: server,
    async killMaster() {
      const port = await masterPortNow();
      const child = servers.get(port);
      if (!child) throw new Error(`no server of this set on port ${port}`);
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
      servers.delete(port);
      return port;
    },
    async waitForNewMaster(oldPort, timeoutMs = READY_TIMEOUT_MS) {
      let port = oldPort;
      await until(
        'a new master',
        async () => {
          port = await masterPortNow();
          return port !== oldPort && (await server(port, async (r) => (await r.call('ROLE')) as unknown[]))[0] === 'master';
        },
        timeoutMs,
      );
      return port;
    },
    stop: stopAll,
  };
}
