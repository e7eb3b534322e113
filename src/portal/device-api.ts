import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { systemClock, type Clock } from '../core/clock.js';
import type { ApprovalService } from '../core/approval-service.js';
import type { DeviceService } from '../core/device-service.js';
import { isMailotpError } from '../core/errors.js';
import type { Decision, RequestService } from '../core/request-service.js';
import type { DeviceRecord } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import { registerDeviceAppRoutes } from './device-app-routes.js';
import { DeviceEventStream, parseLastEventId } from './event-stream.js';
import { toApiRequest } from '../core/request-view.js';

export const DEVICE_API_PREFIX = '/api/v1/device';
/** Every body this API takes is a few hundred bytes at most. */
export const DEVICE_API_BODY_LIMIT = 16 * 1024;

const DEFAULT_HEARTBEAT_MS = 15_000;
/** A phone that changed networks may reconnect before its old stream is noticed dead; a few are fine. */
const MAX_STREAMS_PER_DEVICE = 4;
const AUTH_FAILURE_WINDOW_MS = 60_000;
const DEFAULT_AUTH_FAILURE_LIMIT = 20;
/** Request ids are 22 characters; fastify answers 414 to a path parameter over 100 anyway. */
const REQUEST_ID = /^[A-Za-z0-9_-]{1,100}$/;

export interface DeviceApiDeps {
  devices: DeviceService;
  approvals: ApprovalService;
  requests: RequestService;
  logger: Logger;
  /** Interval of the `: heartbeat` comments on the event stream, which also re-read the device's
   * event log in case a wake-up was lost [15000]. */
  heartbeatMs?: number;
  /** Failed bearer tokens per client IP per minute (counted in the store, across instances) before
   * that IP's failed requests get 429 instead of 401 [20]. A valid token always passes. */
  authFailuresPerMinute?: number;
  /** The clock of the failure counter's windows [system clock]. */
  clock?: Clock;
}

export interface DeviceApiHandle {
  /** Ends every open event stream (shutdown). Also run by the fastify instance's preClose. */
  closeStreams(): void;
  /** How many event streams are open. */
  streamCount(): number;
}

interface DecideBody {
  decision: Decision;
  number?: number;
}

interface PushTokenBody {
  token: string;
  platform: 'android' | 'ios';
}

const decideSchema = {
  type: 'object',
  required: ['decision'],
  properties: {
    decision: { type: 'string', enum: ['approve', 'deny', 'report'] },
    number: { type: 'integer', minimum: 0, maximum: 999_999_999 },
  },
} as const;

const pushTokenSchema = {
  type: 'object',
  required: ['token', 'platform'],
  properties: {
    // Printable ASCII only: FCM/APNs tokens are, and it keeps control characters out of later requests.
    token: { type: 'string', minLength: 1, maxLength: 4096, pattern: '^[\\x21-\\x7e]+$' },
    platform: { type: 'string', enum: ['android', 'ios'] },
  },
} as const;

const ERROR_NAMES: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  406: 'not-acceptable',
  408: 'timeout',
  409: 'conflict',
  411: 'length-required',
  413: 'payload-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
  422: 'unprocessable',
  429: 'too-many-requests',
};

/** The `error` word for a 4xx status. */
export function errorName(status: number): string {
  return ERROR_NAMES[status] ?? 'bad-request';
}

/**
 * Turns every error into a small JSON body. Store outages are 503 so that a phone retries instead
 * of believing an answer; anything unexpected is 500 with no detail (the log has it).
 */
export function jsonErrorHandler(logger: Logger) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    if (isMailotpError(err, 'MAILOTP_ERR_STORE_UNAVAILABLE')) {
      logger.warn({ route: routeOf(request), err: err.message }, 'store unavailable');
      void reply.code(503).send({ error: 'unavailable' });
      return;
    }
    if (err.validation) {
      void reply.code(400).send({ error: 'bad-request', message: err.message });
      return;
    }
    const status = err.statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      void reply.code(status).send({ error: errorName(status) });
      return;
    }
    logger.error({ route: routeOf(request), err: err.message, stack: err.stack }, 'portal request failed');
    void reply.code(500).send({ error: 'internal' });
  };
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^\s*Bearer\s+([\x21-\x7e]{1,512})\s*$/i.exec(header);
  return m?.[1] ?? null;
}

/**
 * Registers the device API (INTERFACE.md, "Device API") under /api/v1/device on the given
 * instance, in its own encapsulated context so that its auth hook and error handler stay there.
 */
export function registerDeviceApi(app: FastifyInstance, deps: DeviceApiDeps): DeviceApiHandle {
  const { devices, requests, logger } = deps;
  const heartbeatMs = deps.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const failures = devices.authFailureLimiter(
    { failuresPerWindow: deps.authFailuresPerMinute ?? DEFAULT_AUTH_FAILURE_LIMIT, windowMs: AUTH_FAILURE_WINDOW_MS },
    deps.clock ?? systemClock,
  );
  // Which device a request authenticated as; a WeakMap keeps it off the shared FastifyRequest type.
  const authenticated = new WeakMap<FastifyRequest, DeviceRecord>();
  const streams = new Set<DeviceEventStream>();

  const deviceOf = (request: FastifyRequest): DeviceRecord => {
    const device = authenticated.get(request);
    // The onRequest hook answers 401 before any handler runs, so this is a programming error.
    if (!device) throw new Error('device API handler ran without an authenticated device');
    return device;
  };

  // The token is checked before the brake, so that a valid one always passes (a phone behind the
  // same NAT as a scanner); the brake only turns a blocked address's failures from 401 into 429.
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const clientIp = request.ip;
    const token = bearerToken(request.headers.authorization);
    const unavailable = (err: unknown): void => {
      // Only the store can fail here; whatever it threw, the answer is "try later", never a 200.
      logger.warn({ event: 'device.auth-unavailable', clientIp, err: err instanceof Error ? err.message : String(err) }, 'cannot check device token');
      void reply.code(503).send({ error: 'unavailable' });
    };
    let device: DeviceRecord | null = null;
    if (token) {
      try {
        device = await devices.authenticate(token);
      } catch (err) {
        return unavailable(err);
      }
    }
    if (device) {
      authenticated.set(request, device);
      return;
    }
    let counted;
    try {
      counted = await failures.recordFailure(clientIp);
    } catch (err) {
      return unavailable(err);
    }
    const reason = token ? 'invalid-token' : 'no-token';
    if (counted.retryAfterMs > 0) {
      logger.debug({ event: 'device.auth-failed', clientIp, reason, failures: counted.failures, limited: true }, 'device API rate limited');
      void reply
        .code(429)
        .header('Retry-After', String(Math.ceil(counted.retryAfterMs / 1000)))
        .send({ error: 'too-many-requests' });
      return;
    }
    logger.warn({ event: 'device.auth-failed', clientIp, reason, failures: counted.failures }, 'device API authentication failed');
    void reply.code(401).header('WWW-Authenticate', 'Bearer realm="mailotp"').send({ error: 'unauthorized' });
  };

  const closeStreams = (): void => {
    for (const s of streams) s.sse.end();
  };

  app.register(
    async (api) => {
      api.setErrorHandler(jsonErrorHandler(logger));
      api.addHook('onRequest', authenticate);
      api.addHook('onSend', async (_request, reply, payload) => {
        void reply.header('Cache-Control', 'no-store');
        return payload;
      });
      api.addHook('preClose', (done) => {
        closeStreams();
        done();
      });

      api.get('/requests', async (request) => {
        const device = deviceOf(request);
        const pending = await requests.listPending(device.deviceId);
        return { requests: pending.map(toApiRequest) };
      });

      api.post<{ Params: { id: string }; Body: DecideBody }>(
        '/requests/:id',
        { schema: { body: decideSchema }, bodyLimit: DEVICE_API_BODY_LIMIT },
        async (request, reply) => {
          const device = deviceOf(request);
          const { id } = request.params;
          if (!REQUEST_ID.test(id)) return reply.code(404).send({ error: 'not-found' });
          const { decision, number } = request.body;
          const outcome = await requests.decide(device.deviceId, id, decision, number);
          switch (outcome.status) {
            case 'approved':
            case 'denied':
              return { status: outcome.status };
            case 'not-found':
              return reply.code(404).send({ error: 'not-found' });
            case 'already-decided':
              return reply.code(409).send({ error: 'already-decided', status: outcome.request.status });
            case 'wrong-number':
              return reply.code(422).send({ error: 'wrong-number' });
          }
        },
      );

      api.put<{ Body: PushTokenBody }>(
        '/push-token',
        { schema: { body: pushTokenSchema }, bodyLimit: DEVICE_API_BODY_LIMIT },
        async (request) => {
          const device = deviceOf(request);
          await devices.setPushToken(device, request.body.token, request.body.platform);
          return { status: 'ok' };
        },
      );

      registerDeviceAppRoutes(api, { devices, approvals: deps.approvals }, deviceOf);

      api.get('/events', async (request, reply) => {
        const device = deviceOf(request);
        const res = reply.raw;
        reply.hijack();
        const stream = new DeviceEventStream(device.deviceId, res, { requests, devices, logger, heartbeatMs });
        const log = { deviceId: device.deviceId, clientIp: request.ip };
        const cleanup = (): void => {
          stream.close();
          if (streams.delete(stream)) logger.debug(log, 'event stream closed');
        };
        res.once('close', cleanup);
        res.once('error', cleanup);

        let start;
        try {
          start = await stream.prepare(parseLastEventId(request.headers['last-event-id'], request.query));
        } catch (err) {
          logger.warn({ ...log, err: err instanceof Error ? err.message : String(err) }, 'cannot open event stream');
          if (!res.headersSent && !res.destroyed) {
            res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
            res.end(JSON.stringify({ error: 'unavailable' }));
          }
          cleanup();
          return;
        }
        if (res.destroyed) return; // the client went away while the log or the list was read

        stream.start(start, () => {
          evictOldest(device.deviceId);
          streams.add(stream);
        });
        logger.debug({ ...log, start: start.kind }, 'event stream opened');
      });
    },
    { prefix: DEVICE_API_PREFIX },
  );

  function evictOldest(deviceId: string): void {
    const mine = [...streams].filter((s) => s.deviceId === deviceId && !s.sse.ended);
    // Set iteration is insertion order, so the first ones are the oldest.
    for (let i = 0; i <= mine.length - MAX_STREAMS_PER_DEVICE; i++) mine[i]?.sse.end();
  }

  return { closeStreams, streamCount: () => streams.size };
}
