/** Shared by the device API tests: an HTTP(S) client, a minimal EventSource and an in-memory core. */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { FakeClock } from '../../src/core/clock.js';
import { MailotpError } from '../../src/core/errors.js';
import type { DeviceRecord, RequestRecord } from '../../src/core/types.js';
import { silentLogger } from '../../src/log/logger.js';
import { PortalServer, type PortalServerDeps } from '../../src/portal/portal-server.js';
import { SqliteStore } from '../../src/stores/sqlite-store.js';
import type { Store } from '../../src/core/ports/store.js';
import { coreFixture, type CoreFixture } from '../core/core-fixture.js';

export const REQUEST_TTL_MS = 300_000;

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export interface Target {
  port: number;
  /** Trusted CAs; absent for plain HTTP. */
  ca?: Buffer[];
}

export function call(
  target: Target,
  method: string,
  urlPath: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (opts.body !== undefined) {
    payload = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const base = { host: '127.0.0.1', port: target.port, method, path: urlPath, headers, agent: false as const };
  return new Promise((resolve, reject) => {
    const onResponse = (res: http.IncomingMessage): void => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.on('error', reject);
    };
    const req = target.ca ? https.request({ ...base, ca: target.ca }, onResponse) : http.request(base, onResponse);
    req.on('error', reject);
    req.end(payload);
  });
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** A minimal EventSource: keeps every event, comment and retry line it receives. */
export class SseClient {
  events: SseEvent[] = [];
  comments: string[] = [];
  retry: number | undefined;
  /** What an EventSource would send as Last-Event-ID: set by any block with an id, data or not. */
  lastEventId: string | undefined;
  ended = false;
  private buf = '';

  private constructor(
    private readonly req: http.ClientRequest,
    readonly res: http.IncomingMessage,
  ) {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => this.feed(chunk));
    res.on('end', () => (this.ended = true));
    res.on('close', () => (this.ended = true));
    res.on('error', () => (this.ended = true));
  }

  static open(target: Target, token: string | undefined, opts: { lastEventId?: string; query?: string } = {}): Promise<SseClient> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
    const urlPath = `/api/v1/device/events${opts.query ?? ''}`;
    const base = { host: '127.0.0.1', port: target.port, path: urlPath, headers, agent: false as const };
    return new Promise((resolve, reject) => {
      const onResponse = (res: http.IncomingMessage): void => resolve(new SseClient(req, res));
      const req = target.ca ? https.get({ ...base, ca: target.ca }, onResponse) : http.get(base, onResponse);
      req.on('error', reject);
    });
  }

  private feed(chunk: string): void {
    this.buf += chunk;
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const ev: SseEvent = { data: '' };
      let isEvent = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments.push(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'retry') this.retry = Number(value);
        else if (field === 'id') {
          ev.id = value;
          this.lastEventId = value;
        }
        else if (field === 'event') ev.event = value;
        else if (field === 'data') {
          ev.data = ev.data ? `${ev.data}\n${value}` : value;
          isEvent = true;
        }
      }
      if (isEvent) this.events.push(ev);
    }
  }

  close(): void {
    this.req.destroy();
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A store whose listed async methods reject as an unreachable backend does. */
export function flakyStore(store: Store, failing: Set<string>): Store {
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (failing.has(String(prop))) return Promise.reject(new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', 'store down'));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

export interface Fixture extends CoreFixture {
  store: SqliteStore;
  /** Handlers subscribed to the store right now. */
  subscriptions(): number;
}

/** The core as production builds it, with a store that counts its subscribers; its timers (recheck, an expiry sweep every 50 ms once started) run on the fake clock. */
export function fixture(): Fixture {
  const store = new SqliteStore({ path: ':memory:' });
  let active = 0;
  const subscribe = store.subscribe.bind(store);
  store.subscribe = (handler) => {
    active++;
    const unsubscribe = subscribe(handler);
    let done = false;
    return () => {
      if (!done) active--;
      done = true;
      unsubscribe();
    };
  };
  const core = coreFixture({ store, clock: new FakeClock(Date.UTC(2026, 0, 1, 12)), requestTimings: { recheckMs: 50, sweepIntervalMs: 50 } });
  return { ...core, store, subscriptions: () => active };
}

export async function bind(f: Fixture, user: string): Promise<{ device: DeviceRecord; token: string }> {
  const r = await f.devices.bind(user, `${user}'s phone`, false);
  assert.equal(r.status, 'bound');
  if (r.status !== 'bound') throw new Error('not bound');
  return { device: r.device, token: r.token };
}

export async function open(f: Fixture, device: DeviceRecord, clientIp: string, clientName?: string): Promise<RequestRecord> {
  const r = await f.requests.openConnection({ user: device.user, device, protocol: 'imap', clientIp, ...(clientName ? { clientName } : {}) });
  assert.equal(r.created, true);
  return r.request;
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/** A plain-HTTP portal on a free loopback port over the fixture's services; `extra` adds or overrides deps. */
export function plainPortal(f: Fixture, extra: Partial<PortalServerDeps> = {}): PortalServer {
  return new PortalServer({
    settings: { host: '127.0.0.1', port: 0, tls: false, enabled: true },
    tls: null,
    devices: f.devices,
    requests: f.requests,
    approvals: f.approvals,
    ping: () => f.store.ping(),
    logger: silentLogger(),
    ...extra,
  });
}
