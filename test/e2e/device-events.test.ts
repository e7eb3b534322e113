import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testCerts } from '../helpers/certs.js';
import { startDovecot, type DovecotHandle } from '../helpers/dovecot.js';
import { startRedisServer, type RedisServerHandle } from '../helpers/redis-server.js';
import { decide, enrol, imapClient, startMailotp, waitForRequest, type MailotpProcess } from './harness.js';

const SECRET = 'e2e-webhook-secret-0123456789';

interface SseEvent {
  id: string;
  event: string;
  data: { id: string; status?: string; clientIp?: string; user?: string; protocol?: string };
}

/** The event stream as curl sees it: a client we did not write, reading the raw bytes. */
class CurlStream {
  events: SseEvent[] = [];
  lastEventId: string | undefined;
  opened = false;
  private buf = '';
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(port: number, token: string, lastEventId?: string) {
    const args = ['-sN', '--cacert', testCerts().caFile, '-H', `Authorization: Bearer ${token}`];
    if (lastEventId !== undefined) args.push('-H', `Last-Event-ID: ${lastEventId}`);
    args.push(`https://127.0.0.1:${port}/api/v1/device/events`);
    this.child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => this.feed(chunk));
  }

  private feed(chunk: string): void {
    this.buf += chunk;
    for (let i = this.buf.indexOf('\n\n'); i >= 0; i = this.buf.indexOf('\n\n')) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      const fields = new Map<string, string>();
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        fields.set(colon < 0 ? line : line.slice(0, colon), colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, ''));
      }
      if (fields.has('retry')) this.opened = true;
      const id = fields.get('id');
      if (id !== undefined) this.lastEventId = id;
      const data = fields.get('data');
      if (data !== undefined && id !== undefined) this.events.push({ id, event: fields.get('event') ?? 'message', data: JSON.parse(data) as SseEvent['data'] });
    }
  }

  async waitFor(what: string, pred: (e: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${what} on the stream; got ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill();
    await this.exited;
  }
}

interface Hook {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** What a receiver would write from the README: HMAC-SHA256 over `${timestamp}.${body}`. */
function signatureOk(h: Hook): boolean {
  const expected = Buffer.from('sha256=' + createHmac('sha256', SECRET).update(`${String(h.headers['x-mailotp-timestamp'])}.${h.body}`).digest('hex'));
  const got = Buffer.from(String(h.headers['x-mailotp-signature']));
  return got.length === expected.length && timingSafeEqual(got, expected);
}

describe('device events across two instances on one Redis', () => {
  let dovecot: DovecotHandle;
  let redis: RedisServerHandle;
  let hooks: Hook[];
  let hookServer: http.Server;
  let a: MailotpProcess;
  let b: MailotpProcess;
  let token: string;
  const streams: CurlStream[] = [];
  /** Request ids in the order the scenario opens them. */
  const ids: string[] = [];
  let seen: string | undefined;

  const stream = (m: MailotpProcess, lastEventId?: string): CurlStream => {
    const s = new CurlStream(m.portal, token, lastEventId);
    streams.push(s);
    return s;
  };
  const opened = async (s: CurlStream): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!s.opened) {
      assert.ok(Date.now() < deadline, 'the stream did not open');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    hooks = [];
    hookServer = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        hooks.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/mailotp-hook`;
    [dovecot, redis] = await Promise.all([startDovecot(), startRedisServer()]);
    const store = { driver: 'redis', url: redis.url, keyPrefix: `e2e-events-${process.pid}:` };
    const push = { webhook: { url: hookUrl, secret: SECRET } };
    [a, b] = await Promise.all([
      startMailotp({ dovecot, store, push, daemonOtp: { holdTime: '20s' } }),
      startMailotp({ dovecot, store, push, daemonOtp: { holdTime: '20s' } }),
    ]);
    token = await enrol(a, 'alice');
  });

  after(async () => {
    await Promise.all(streams.map((s) => s.stop()));
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([redis?.stop(), dovecot?.stop()]);
    hookServer?.closeAllConnections();
    await new Promise<void>((resolve) => (hookServer ? hookServer.close(() => resolve()) : resolve()));
  });

  it('a login held on A shows up on a stream served by B, and approving on A settles it there', async () => {
    const onB = stream(b);
    await opened(onB);
    const client = imapClient(a.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.5' });
    const connecting = client.connect();
    const req = await onB.waitFor('request event', (e) => e.event === 'request');
    assert.equal(req.data.clientIp, '127.0.0.5');
    assert.equal(req.data.user, 'alice');
    assert.equal(req.data.protocol, 'imap');
    ids.push(req.data.id);

    assert.equal((await decide(a.portal, token, req.data.id, 'approve')).status, 200);
    await connecting;
    const settled = await onB.waitFor('settled event', (e) => e.event === 'settled');
    assert.deepEqual(settled.data, { id: req.data.id, status: 'approved' });
    assert.ok(Number(settled.id) > Number(req.id));
    await client.logout();
    seen = onB.lastEventId;
    await onB.stop();
  });

  it('a stream that reconnects to A with Last-Event-ID gets what it missed exactly once, then live events', async () => {
    assert.ok(seen !== undefined, 'runs after the first test');
    // While the phone is away: one request denied on B, one left waiting.
    const denied = imapClient(a.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.6' });
    const deniedLogin = denied.connect().then(
      () => 'in',
      () => 'refused',
    );
    const second = await waitForRequest(b.portal, token, (r) => r.clientIp === '127.0.0.6');
    assert.equal((await decide(b.portal, token, second.id, 'deny')).status, 200);
    assert.equal(await deniedLogin, 'refused');
    ids.push(second.id);

    const waiting = imapClient(b.imaps, 'alice', 'alice-pass-1', { localAddress: '127.0.0.7' });
    const waitingLogin = waiting.connect().then(
      () => 'in',
      () => 'gone',
    );
    const third = await waitForRequest(a.portal, token, (r) => r.clientIp === '127.0.0.7');
    ids.push(third.id);

    const onA = stream(a, seen);
    await onA.waitFor('the missed events', () => onA.events.length >= 3);
    assert.deepEqual(
      onA.events.map((e) => [e.event, e.data.id, e.data.status]),
      [
        ['request', second.id, undefined],
        ['settled', second.id, 'denied'],
        ['request', third.id, undefined],
      ],
    );
    const eventIds = onA.events.map((e) => Number(e.id));
    assert.ok(eventIds.every((id, i) => id > Number(seen) && (i === 0 || id > (eventIds[i - 1] ?? 0))), `increasing ids: ${eventIds.join(',')}`);

    // Decided on B, streamed live by A.
    assert.equal((await decide(b.portal, token, third.id, 'approve')).status, 200);
    const live = await onA.waitFor('the live settle', (e) => e.event === 'settled' && e.data.id === third.id);
    assert.equal(live.data.status, 'approved');
    assert.equal(await waitingLogin, 'in');
    await waiting.logout();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(onA.events.length, 4, 'nothing arrived twice');
    await onA.stop();
  });

  it('the webhook got one signed opened and one settled POST per request, from whichever instance acted', async () => {
    assert.equal(ids.length, 3, 'runs after the others');
    const deadline = Date.now() + 10_000;
    while (hooks.length < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const h of hooks) {
      assert.ok(signatureOk(h), 'signature verifies');
      assert.equal(h.headers['content-type'], 'application/json');
    }
    const seenHooks = hooks.map((h) => JSON.parse(h.body) as { event: string; request: { id: string }; status?: string; portalUrl?: string });
    const summary = seenHooks.map((p) => `${p.event} ${p.request.id} ${p.status ?? ''}`.trim()).sort();
    const [first, second, third] = ids as [string, string, string];
    assert.deepEqual(
      summary,
      [
        `request.opened ${first}`,
        `request.opened ${second}`,
        `request.opened ${third}`,
        `request.settled ${first} approved`,
        `request.settled ${second} denied`,
        `request.settled ${third} approved`,
      ].sort(),
    );
    assert.ok(seenHooks.every((p) => p.portalUrl === 'https://localhost:8443'));
  });
});
