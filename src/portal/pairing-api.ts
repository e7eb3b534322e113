import type { FastifyInstance } from 'fastify';
import type { PairingService } from '../core/pairing-service.js';
import type { Logger } from '../log/logger.js';
import { DEVICE_API_BODY_LIMIT, jsonErrorHandler } from './device-api.js';

export const PAIRING_API_PREFIX = '/api/v1/pairing';

/** Claims and link secrets are 32 random bytes, base64url. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;

const nameProp = { type: 'string', maxLength: 64 } as const;
const answerBody = {
  type: 'object',
  required: ['number'],
  properties: { number: { type: 'integer', minimum: 0, maximum: 999 }, name: nameProp },
  additionalProperties: false,
} as const;

export interface PairingApiDeps {
  pairing: PairingService;
  logger: Logger;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The optional name in a code request: undefined when not given, null when the body is not acceptable. */
function deviceName(body: unknown): string | undefined | null {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) return null;
  const { name, ...rest } = body as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return null;
  if (name === undefined) return undefined;
  return typeof name === 'string' && name.length <= nameProp.maxLength ? name : null;
}

/**
 * The phone's side of pairing (PORTAL-CONTRACT.md): JSON, no cookies, no CSRF; every secret is
 * single-use and lives 10 minutes in the store. The desktop side is the settings page.
 */
export function registerPairingApi(app: FastifyInstance, deps: PairingApiDeps): void {
  const { pairing, logger } = deps;
  void app.register(
    async (api) => {
      api.setErrorHandler(jsonErrorHandler(logger));
      api.addHook('onSend', async (_request, reply, payload) => {
        void reply.header('Cache-Control', 'no-store');
        return payload;
      });

      // The body is optional (a phone with nothing to say about itself), so it is checked here.
      api.post<{ Body: unknown }>('/code', { bodyLimit: DEVICE_API_BODY_LIMIT }, async (request, reply) => {
        const name = deviceName(request.body);
        if (name === null) return reply.code(400).send({ error: 'bad-request', message: 'body must be {"name"?: string of up to 64 characters}' });
        if (!(await pairing.mayCreateCode(request.ip))) return reply.code(429).send({ error: 'too-many-requests' });
        const created = await pairing.createCode(name);
        return reply.code(201).send({ code: created.code, claim: created.claim, expiresAt: iso(created.expiresAt) });
      });

      api.get<{ Params: { claim: string } }>('/code/:claim', async (request, reply) => {
        if (!SECRET.test(request.params.claim)) return reply.code(404).send({ error: 'not-found' });
        const s = await pairing.claimStatus(request.params.claim);
        switch (s.status) {
          case 'waiting':
            return { status: 'waiting', expiresAt: iso(s.expiresAt) };
          case 'bound':
            return { status: 'bound', token: s.token, deviceId: s.deviceId, user: s.user };
          case 'not-found':
            return reply.code(404).send({ error: 'not-found' });
        }
      });

      api.get<{ Params: { secret: string } }>('/link/:secret', async (request, reply) => {
        const link = SECRET.test(request.params.secret) ? await pairing.linkChoices(request.params.secret) : null;
        if (!link) return reply.code(404).send({ error: 'not-found' });
        return { user: link.user, choices: link.choices, expiresAt: iso(link.expiresAt) };
      });

      api.post<{ Params: { secret: string }; Body: { number: number; name?: string } }>(
        '/link/:secret',
        { schema: { body: answerBody }, bodyLimit: DEVICE_API_BODY_LIMIT },
        async (request, reply) => {
          if (!SECRET.test(request.params.secret)) return reply.code(404).send({ error: 'not-found' });
          const r = await pairing.answerLink(request.params.secret, request.body.number, request.body.name);
          switch (r.status) {
            case 'bound':
              return { token: r.token, deviceId: r.deviceId, user: r.user };
            case 'wrong-number':
              return reply.code(409).send({ error: 'wrong-number' });
            case 'exists':
              return reply.code(409).send({ error: 'device-exists' });
            case 'not-found':
              return reply.code(404).send({ error: 'not-found' });
          }
        },
      );
    },
    { prefix: PAIRING_API_PREFIX },
  );
}
