/**
 * TEST ONLY. The portal as the web authenticator app sees it before the portal pages (issue 10,
 * helper 10a) are merged: one fastify instance with @fastify/helmet and the strict CSP of the
 * portal contract, the app (registerAuthenticatorApp), the real device API, and a stand-in for the
 * pairing API that follows /work/notes/PORTAL-CONTRACT.md ("Pairing API") exactly, with the
 * desktop side (typing the code, showing the number) driven by the test.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance } from 'fastify';
import type { CoreServices } from '../../src/core/services.js';
import type { Logger } from '../../src/log/logger.js';
import { registerAuthenticatorApp } from '../../src/portal/app/register-app.js';
import { PORTAL_CSP } from '../../src/portal/pages/register-pages.js';
import { jsonErrorHandler, registerDeviceApi, type DeviceApiHandle } from '../../src/portal/device-api.js';
import { testCerts } from '../helpers/certs.js';

/** The portal's own CSP, so that the app is proven to run under exactly what the real portal sends. */
export { PORTAL_CSP };

const TEN_MINUTES = 10 * 60_000;

interface CodeEntry {
  code: string;
  name: string;
  expiresAt: number;
  bound?: { token: string; deviceId: string; user: string };
}

interface LinkEntry {
  user: string;
  choices: number[];
  number: number;
  expiresAt: number;
}

export interface AppPortal {
  port: number;
  origin: string;
  /** The desktop settings page's "Device verification code" + "Bind", for this user. */
  enterCode(code: string, user: string): Promise<'bound' | 'not-found' | 'exists'>;
  /** The desktop's "Bind a phone": the QR link's secret and the number it shows. */
  createLink(user: string): { secret: string; number: number; choices: number[] };
  /** Every event-stream request so far: its bearer token and Last-Event-ID header ('' when absent). */
  streamRequests: { token: string; lastEventId: string }[];
  /** Ends every open event stream, as a restart or a dropped connection would. */
  endStreams(): void;
  close(): Promise<void>;
}

function threeNumbers(): number[] {
  const s = new Set<number>();
  while (s.size < 3) s.add(randomInt(10, 100));
  return [...s];
}

export async function startAppPortal(core: CoreServices, logger: Logger, webPushPublicKey: string | null): Promise<AppPortal> {
  const certs = testCerts();
  let api: DeviceApiHandle | null = null;
  const app: FastifyInstance = Fastify({
    logger: false,
    serverFactory: (handler) => https.createServer({ cert: readFileSync(certs.certFile), key: readFileSync(certs.keyFile) }, handler) as never,
  });
  await app.register(helmet, { contentSecurityPolicy: { useDefaults: false, directives: PORTAL_CSP } });
  app.setErrorHandler(jsonErrorHandler(logger));
  const streamRequests: AppPortal['streamRequests'] = [];
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/api/v1/device/events')) return;
    const token = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
    streamRequests.push({ token, lastEventId: String(request.headers['last-event-id'] ?? '') });
  });
  registerAuthenticatorApp(app, { webPushPublicKey });
  api = registerDeviceApi(app, { devices: core.devices, requests: core.requests, approvals: core.approvals, logger, heartbeatMs: 2000 });

  const claims = new Map<string, CodeEntry>();
  const links = new Map<string, LinkEntry>();
  const live = <T extends { expiresAt: number }>(e: T | undefined): T | undefined => (e && e.expiresAt > Date.now() ? e : undefined);

  app.post<{ Body: { name?: string } }>('/api/v1/pairing/code', async (request, reply) => {
    const claim = randomBytes(24).toString('base64url');
    const code = String(randomInt(0, 1e9)).padStart(9, '0');
    const entry: CodeEntry = { code, name: request.body?.name ?? 'Phone', expiresAt: Date.now() + TEN_MINUTES };
    claims.set(claim, entry);
    return reply.code(201).send({ code, claim, expiresAt: new Date(entry.expiresAt).toISOString() });
  });
  app.get<{ Params: { claim: string } }>('/api/v1/pairing/code/:claim', async (request, reply) => {
    const e = live(claims.get(request.params.claim));
    if (!e) return reply.code(404).send({ error: 'not-found' });
    if (!e.bound) return { status: 'waiting', expiresAt: new Date(e.expiresAt).toISOString() };
    claims.delete(request.params.claim); // the token is handed out exactly once
    return { status: 'bound', ...e.bound };
  });
  app.get<{ Params: { secret: string } }>('/api/v1/pairing/link/:secret', async (request, reply) => {
    const e = live(links.get(request.params.secret));
    if (!e) return reply.code(404).send({ error: 'not-found' });
    return { user: e.user, choices: e.choices, expiresAt: new Date(e.expiresAt).toISOString() };
  });
  app.post<{ Params: { secret: string }; Body: { number: number; name?: string } }>('/api/v1/pairing/link/:secret', async (request, reply) => {
    const e = live(links.get(request.params.secret));
    links.delete(request.params.secret);
    if (!e) return reply.code(404).send({ error: 'not-found' });
    if (request.body.number !== e.number) return reply.code(409).send({ error: 'wrong-number' });
    const r = await core.devices.bind(e.user, request.body.name ?? 'Phone', false);
    if (r.status !== 'bound') return reply.code(409).send({ error: 'exists' });
    return { token: r.token, deviceId: r.device.deviceId, user: e.user };
  });

  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    port,
    origin: `https://localhost:${port}`,
    async enterCode(code, user) {
      const digits = code.replace(/\s/g, '');
      for (const e of claims.values()) {
        if (e.code !== digits || !live(e) || e.bound) continue;
        const r = await core.devices.bind(user, e.name, false);
        if (r.status !== 'bound') return 'exists';
        e.bound = { token: r.token, deviceId: r.device.deviceId, user };
        return 'bound';
      }
      return 'not-found';
    },
    createLink(user) {
      const secret = randomBytes(24).toString('base64url');
      const choices = threeNumbers();
      const number = choices[randomInt(0, 3)]!;
      links.set(secret, { user, choices, number, expiresAt: Date.now() + TEN_MINUTES });
      return { secret, number, choices };
    },
    streamRequests,
    endStreams() {
      api?.closeStreams();
    },
    async close() {
      api?.closeStreams();
      await app.close();
    },
  };
}
