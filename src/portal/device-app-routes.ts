import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApprovalService } from '../core/approval-service.js';
import type { DeviceService } from '../core/device-service.js';
import type { DeviceRecord, WebPushSubscription } from '../core/types.js';

export interface DeviceAppRoutesDeps {
  devices: DeviceService;
  approvals: ApprovalService;
}

/** A subscription is well under 3 KB. */
const SUBSCRIPTION_BODY_LIMIT = 8 * 1024;

interface SubscriptionBody {
  endpoint: string;
  expirationTime?: number | null;
  keys: { p256dh: string; auth: string };
}

/** A browser's PushSubscription.toJSON(); endpoints are a few hundred characters in practice. */
const subscriptionSchema = {
  type: 'object',
  required: ['endpoint', 'keys'],
  properties: {
    endpoint: { type: 'string', minLength: 12, maxLength: 2048, pattern: '^https://[\\x21-\\x7e]+$' },
    expirationTime: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'null' }] },
    keys: {
      type: 'object',
      required: ['p256dh', 'auth'],
      properties: {
        // 65-byte uncompressed P-256 point and 16-byte secret (RFC 8291), base64url.
        p256dh: { type: 'string', minLength: 86, maxLength: 88, pattern: '^[A-Za-z0-9_-]+={0,2}$' },
        auth: { type: 'string', minLength: 22, maxLength: 24, pattern: '^[A-Za-z0-9_-]+={0,2}$' },
      },
    },
  },
} as const;

const revokeQuerySchema = {
  type: 'object',
  properties: { clientIp: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

/**
 * Why a subscription is refused, or null when it is usable. The server POSTs to the endpoint, so it
 * must be an https URL on a DNS name: no IP literals or localhost, which would let a device token
 * aim the server at internal addresses.
 */
export function subscriptionProblem(body: SubscriptionBody): string | null {
  let url: URL;
  try {
    url = new URL(body.endpoint);
  } catch {
    return 'endpoint is not a URL';
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol !== 'https:' || url.username || url.password) return 'endpoint must be an https URL without credentials';
  if (isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost') || !host.includes('.')) return 'endpoint must name a push service by its DNS name';
  const p256dh = Buffer.from(body.keys.p256dh, 'base64url');
  if (p256dh.length !== 65 || p256dh[0] !== 4) return 'keys.p256dh must be an uncompressed P-256 public key';
  if (Buffer.from(body.keys.auth, 'base64url').length !== 16) return 'keys.auth must be 16 bytes';
  return null;
}

/**
 * The device API routes the web authenticator app needs beyond requests and events: who it is,
 * the user's approved connections, and its Web Push subscription. Registered inside the device
 * API's context, behind its bearer-token hook.
 */
export function registerDeviceAppRoutes(api: FastifyInstance, deps: DeviceAppRoutesDeps, deviceOf: (request: FastifyRequest) => DeviceRecord): void {
  const { devices, approvals } = deps;

  api.get('/me', async (request) => {
    const d = deviceOf(request);
    return { deviceId: d.deviceId, user: d.user, name: d.name, createdAt: new Date(d.createdAt).toISOString(), webPush: Boolean(d.webPush) };
  });

  api.get('/approvals', async (request) => {
    const d = deviceOf(request);
    const list = await approvals.list(d.user);
    return {
      approvals: list.map((a) => ({ clientIp: a.clientIp, approvedAt: new Date(a.approvedAt).toISOString(), expiresAt: new Date(a.expiresAt).toISOString() })),
    };
  });

  api.delete<{ Querystring: { clientIp?: string } }>('/approvals', { schema: { querystring: revokeQuerySchema } }, async (request, reply) => {
    const d = deviceOf(request);
    const { clientIp } = request.query;
    if (clientIp !== undefined && isIP(clientIp) === 0) return reply.code(400).send({ error: 'bad-request', message: 'clientIp must be an IP address' });
    const revoked = await approvals.revoke(d.user, clientIp);
    return { revoked };
  });

  api.put<{ Body: SubscriptionBody }>(
    '/push-subscription',
    { schema: { body: subscriptionSchema }, bodyLimit: SUBSCRIPTION_BODY_LIMIT },
    async (request, reply) => {
      const d = deviceOf(request);
      const problem = subscriptionProblem(request.body);
      if (problem) return reply.code(400).send({ error: 'bad-request', message: problem });
      const { endpoint, keys } = request.body;
      const subscription: WebPushSubscription = { endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth } };
      await devices.setWebPush(d, subscription);
      return reply.code(204).send();
    },
  );
}
