import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { splice } from '../../src/upstream/splice.js';

/**
 * Real sockets on both sides of mailotp:
 *   app (the mail client) <-> clientSide  ==splice==  upstreamSide <-> server (the mail server)
 */
interface Rig {
  app: net.Socket;
  clientSide: net.Socket;
  upstreamSide: net.Socket;
  server: net.Socket;
}

const listeners: net.Server[] = [];
const sockets: net.Socket[] = [];
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
});

async function pair(halfOpen: boolean): Promise<[net.Socket, net.Socket]> {
  const listener = net.createServer({ allowHalfOpen: halfOpen });
  listeners.push(listener);
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const connecting = net.connect({ host: '127.0.0.1', port, allowHalfOpen: halfOpen });
  await new Promise<void>((resolve) => connecting.once('connect', resolve));
  const pairOf: [net.Socket, net.Socket] = [connecting, await accepted];
  sockets.push(...pairOf);
  return pairOf;
}

async function rig(halfOpen = true): Promise<Rig> {
  const [app, clientSide] = await pair(halfOpen);
  const [upstreamSide, server] = await pair(halfOpen);
  return { app, clientSide, upstreamSide, server };
}

/** Everything a socket receives until its end, read slowly when asked (to force backpressure). */
function collect(s: net.Socket, slow = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (slow) {
        s.pause();
        setTimeout(() => s.resume(), 1);
      }
    });
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', () => resolve(Buffer.concat(chunks)));
  });
}

/** Writes in chunks honouring 'drain', then ends. */
async function send(s: net.Socket, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += 64 * 1024) {
    if (!s.write(data.subarray(off, off + 64 * 1024))) await new Promise((resolve) => s.once('drain', resolve));
  }
  s.end();
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('splice', () => {
  test('moves MBs both ways byte for byte, buffered bytes first, with backpressure', async () => {
    const r = await rig();
    const fromApp = randomBytes(16 * 1024 * 1024);
    const fromServer = randomBytes(3 * 1024 * 1024);
    const preClient = Buffer.from('a2 NOOP\r\n');
    const preUpstream = Buffer.from('* 3 EXISTS\r\n');

    const spliced = splice(r.clientSide, r.upstreamSide, { clientBuffered: preClient, upstreamBuffered: preUpstream });
    const atApp = collect(r.app, true);
    const sending = Promise.all([send(r.app, fromApp), send(r.server, fromServer)]);

    // The server reads nothing yet: once the kernel buffers are full, splice must stop reading
    // from the client instead of queueing the rest in memory.
    const deadline = Date.now() + 5000;
    while (!r.clientSide.isPaused() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(r.clientSide.isPaused(), 'splice never paused the client side');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(r.upstreamSide.writableLength < 1024 * 1024, `splice queued ${r.upstreamSide.writableLength} bytes in memory`);

    const atServer = collect(r.server, true);
    await sending;
    const [gotServer, gotApp] = await Promise.all([atServer, atApp]);
    const counts = await spliced;

    assert.equal(gotServer.length, preClient.length + fromApp.length);
    assert.equal(sha(gotServer), sha(Buffer.concat([preClient, fromApp])));
    assert.equal(sha(gotApp), sha(Buffer.concat([preUpstream, fromServer])));
    assert.deepEqual(counts, { bytesFromClient: preClient.length + fromApp.length, bytesFromUpstream: preUpstream.length + fromServer.length });
    assert.ok(r.clientSide.destroyed && r.upstreamSide.destroyed);
  });

  test('a client that ends half-closes the upstream, whose answer still gets through', async () => {
    const r = await rig();
    const spliced = splice(r.clientSide, r.upstreamSide);
    const atApp = collect(r.app);
    r.server.on('data', () => undefined);
    r.app.end('a9 LOGOUT\r\n');
    await new Promise((resolve) => r.server.once('end', resolve));
    r.server.end('* BYE Logging out\r\na9 OK Logout completed.\r\n');
    assert.equal((await atApp).toString(), '* BYE Logging out\r\na9 OK Logout completed.\r\n');
    assert.deepEqual(await spliced, { bytesFromClient: 11, bytesFromUpstream: 44 });
  });

  // A regression here hangs on the awaits below: fail in seconds instead.
  test('an upstream reset ends the client side and resolves without throwing', { timeout: 10_000 }, async () => {
    const r = await rig(false);
    const spliced = splice(r.clientSide, r.upstreamSide);
    const appClosed = new Promise((resolve) => r.app.once('close', resolve));
    r.app.on('error', () => undefined);
    r.app.on('data', () => undefined);
    r.app.write('a1 IDLE\r\n');
    await new Promise((resolve) => r.server.once('data', resolve));
    r.server.resetAndDestroy();
    assert.deepEqual(await spliced, { bytesFromClient: 9, bytesFromUpstream: 0 });
    await appClosed;
    assert.equal(r.app.destroyed, true);
  });

  test('once both sides are closed, neither socket holds on to the splice', async () => {
    const r = await rig();
    const events = ['data', 'drain', 'end', 'close'] as const;
    const before = [r.clientSide, r.upstreamSide].map((side) => events.map((e) => side.listenerCount(e)));
    const spliced = splice(r.clientSide, r.upstreamSide);
    r.server.on('data', () => undefined);
    r.app.on('data', () => undefined);
    r.app.end('a9 LOGOUT\r\n');
    await new Promise((resolve) => r.server.once('end', resolve));
    r.server.end('a9 OK\r\n');
    await spliced;
    // A closed socket can outlive its session in the heap (a TLS socket until a full collection):
    // none of the splice's listeners may keep the splice, the other side and the session with it.
    for (const [i, side] of [r.clientSide, r.upstreamSide].entries()) {
      assert.deepEqual(events.map((e) => side.listenerCount(e)), before[i], 'the splice left listeners behind');
      const held = Object.getOwnPropertySymbols(side).filter((k) => k.description === 'mailotp.splice' && Reflect.get(side, k) !== undefined);
      assert.deepEqual(held, [], 'the socket still refers to the splice');
      // A late error on a socket the splice let go of is still never uncaught.
      side.emit('error', new Error('late'));
    }
  });

  test('a client reset closes the upstream connection', { timeout: 10_000 }, async () => {
    const r = await rig(false);
    const spliced = splice(r.clientSide, r.upstreamSide);
    const serverDone = new Promise((resolve) => r.server.once('close', resolve));
    r.server.on('error', () => undefined);
    r.server.on('data', () => undefined);
    r.app.resetAndDestroy();
    assert.deepEqual(await spliced, { bytesFromClient: 0, bytesFromUpstream: 0 });
    await serverDone;
    assert.equal(r.server.destroyed, true);
  });

  test('a peer that stays silent after the other side ended is destroyed after the grace', async () => {
    const r = await rig();
    const started = Date.now();
    const spliced = splice(r.clientSide, r.upstreamSide, { graceMs: 150 });
    r.server.on('data', () => undefined);
    r.app.on('data', () => undefined);
    // The server never answers the half-close: without the grace this would hang.
    r.app.end();
    await spliced;
    assert.ok(Date.now() - started < 2000);
    assert.ok(r.clientSide.destroyed && r.upstreamSide.destroyed);
    r.app.destroy();
    r.server.destroy();
  });

  test('idle timeout tears both sides down', async () => {
    const r = await rig(false);
    const started = Date.now();
    const spliced = splice(r.clientSide, r.upstreamSide, { idleTimeoutMs: 150 });
    const appClosed = new Promise((resolve) => r.app.once('close', resolve));
    r.app.on('error', () => undefined);
    r.server.on('error', () => undefined);
    r.app.resume();
    r.server.resume();
    r.app.write('a1 NOOP\r\n');
    await spliced;
    await appClosed;
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 2000, `took ${took} ms`);
    r.server.destroy();
  });

  test('a side already destroyed before splice() still resolves', async () => {
    const r = await rig(false);
    r.app.on('error', () => undefined);
    r.app.resume();
    r.upstreamSide.destroy();
    await new Promise((resolve) => r.upstreamSide.once('close', resolve));
    const started = Date.now();
    await splice(r.clientSide, r.upstreamSide, { upstreamBuffered: Buffer.from('x') });
    assert.ok(r.clientSide.destroyed);
    assert.ok(Date.now() - started < 1000, 'closed without waiting for the grace');
    r.app.destroy();
    r.server.destroy();
  });
});
