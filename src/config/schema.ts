import { z } from 'zod';
import { parseCidr } from '../core/trusted-networks.js';
import { parseDuration } from './duration.js';

/** A duration string ("30s") turned into milliseconds. */
const duration = (min = 0) =>
  z.string({ error: 'expected a duration like "24h"' }).transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration like "24h"' });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${min}ms` });
      return z.NEVER;
    }
    return ms;
  });

const port = z.number({ error: 'expected a port number' }).int().min(0).max(65535);
const host = z.string().min(1);
const tlsMode = z.enum(['implicit', 'starttls', 'none']);

const listener = z
  .object({
    protocol: z.enum(['imap', 'pop3', 'smtp']),
    port,
    tls: tlsMode,
    host: host.default('0.0.0.0'),
    allowInsecure: z.boolean().default(false),
    proxyProtocol: z.boolean().default(false),
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.tls === 'none' && !l.allowInsecure) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls'],
        message: 'tls: none sends passwords in clear; set allowInsecure: true to accept that',
      });
    }
  });

const upstreamEndpoint = z
  .object({
    host,
    port,
    tls: tlsMode,
    verify: z.boolean().default(true),
    ca: z.string().min(1).optional(),
    servername: z.string().min(1).optional(),
    /** How long to wait for the upstream's TCP/TLS handshake and greeting. */
    connectTimeout: duration(1).prefault('10s'),
  })
  .strict();

const limits = z
  .object({
    /** Longest command line accepted before login, in bytes. */
    maxLineLength: z.number().int().min(512).max(1_048_576).default(8192),
    /** Largest literal ({n}) accepted before login, in bytes. */
    maxLiteralSize: z.number().int().min(64).max(1_048_576).default(8192),
    maxCommandsBeforeLogin: z.number().int().min(1).default(50),
    maxFailedLoginsPerConnection: z.number().int().min(1).default(3),
    preLoginIdleTimeout: duration(1000).prefault('60s'),
    failedLoginsPerUser: z.number().int().min(1).default(10),
    failedLoginsPerIp: z.number().int().min(1).default(30),
    failedLoginWindow: duration(1000).prefault('15m'),
    pushesPerUserPerHour: z.number().int().min(1).default(10),
    /** Client connections open at once in this process, all listeners together. */
    maxConnections: z.number().int().min(1).default(10_000),
    /** Client connections open at once in this process from one client IP (after PROXY protocol). */
    maxConnectionsPerIp: z.number().int().min(1).default(50),
    /** Logins of one user held at once in this process waiting for a tap, each with an upstream session. */
    maxHeldLoginsPerUser: z.number().int().min(1).default(20),
  })
  .strict();

export const configSchema = z
  .object({
    listeners: z
      .array(listener)
      .min(1, 'at least one listener is needed')
      .superRefine((ls, ctx) => {
        const seen = new Set<string>();
        ls.forEach((l, i) => {
          const key = `${l.host}:${l.port}`;
          if (l.port !== 0 && seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'port'], message: `port ${l.port} is used twice` });
          seen.add(key);
        });
      }),
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
    upstream: z
      .object({ imap: upstreamEndpoint.optional(), pop3: upstreamEndpoint.optional(), smtp: upstreamEndpoint.optional() })
      .strict(),
    store: z
      .object({
        driver: z.enum(['sqlite', 'redis']).default('sqlite'),
        path: z.string().min(1).default('data/mailotp.db'),
        url: z.string().min(1).optional(),
        keyPrefix: z.string().default('mailotp:'),
        /** Redis Sentinel instead of url: the sentinels to ask for the current master. */
        sentinels: z
          .array(z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):[0-9]{1,5}$/, 'expected HOST:PORT'))
          .min(1)
          .optional(),
        sentinelName: z.string().min(1).default('mymaster'),
        /** With sentinels: the Redis servers' password (requirepass) and ACL user [none]; with url they go in the url. */
        password: z.string().min(1).optional(),
        username: z.string().min(1).optional(),
        /** With sentinels: the sentinels' own password (requirepass in sentinel.conf) and ACL user [none]. */
        sentinelPassword: z.string().min(1).optional(),
        sentinelUsername: z.string().min(1).optional(),
        /** With sentinels: TLS to the sentinels and to the servers they name [false]; with url: rediss://. */
        tls: z.boolean().default(false),
        /** PEM file of the private CA that signed Redis's (and the sentinels') certificates [the system's CAs]. */
        ca: z.string().min(1).optional(),
        /** Replicas that must hold an approval before the tap is acknowledged (WAIT); unset: 1 with sentinels, else 0. */
        waitReplicas: z.number().int().min(0).max(16).optional(),
        /** How long a tap waits for those replicas before it is answered with a temporary error. */
        waitTimeout: duration(1).refine((ms) => ms <= 10_000, 'at most 10s').prefault('1s'),
      })
      .strict()
      .prefault({})
      .superRefine((s, ctx) => {
        if (s.url && s.sentinels) ctx.addIssue({ code: 'custom', path: ['sentinels'], message: 'use either url or sentinels, not both' });
        if (s.driver === 'redis' && !s.url && !s.sentinels) ctx.addIssue({ code: 'custom', path: ['url'], message: 'required when driver is redis (unless sentinels are given)' });
        if (s.url && !/^rediss?:\/\//.test(s.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'expected redis://HOST:PORT/DB' });
        for (const key of ['password', 'username'] as const) {
          if (s[key] && !s.sentinels) ctx.addIssue({ code: 'custom', path: [key], message: 'only with sentinels; with url, write it into the url: redis://USER:PASSWORD@HOST:PORT/DB' });
        }
        if (s.tls && !s.sentinels) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'only with sentinels; with url, write rediss:// for TLS' });
        if (s.ca && !s.tls && !s.url?.startsWith('rediss://')) ctx.addIssue({ code: 'custom', path: ['ca'], message: 'only with TLS: a rediss:// url, or tls: true with sentinels' });
        for (const key of ['sentinelPassword', 'sentinelUsername'] as const) {
          if (s[key] && !s.sentinels) ctx.addIssue({ code: 'custom', path: [key], message: 'only with sentinels' });
        }
      }),
    daemonOtp: z
      .object({
        enabled: z.boolean().default(true),
        enforce: z.enum(['optional', 'bound', 'all']).default('optional'),
        approvalTtl: duration(1000).prefault('24h'),
        holdTime: duration(100).prefault('30s'),
        /** Per-protocol holds; unset ones are holdTime (SMTP: holdTime, at most 25 s). */
        holdTimes: z.object({ imap: duration(100).optional(), pop3: duration(100).optional(), smtp: duration(100).optional() }).strict().optional(),
        bindTo: z.enum(['client-ip', 'user']).default('client-ip'),
        /** How long a request stays answerable on the phone; longer than holdTime so a late tap counts. */
        requestTtl: duration(1000).prefault('5m'),
        /** Interval of the IMAP "* OK Waiting for approval" lines while a login is held. */
        progressInterval: duration(100).prefault('10s'),
        /** After a deny, the same user and client address get no new push for this long. */
        denyCooldown: duration(0).prefault('15m'),
        /** After "this wasn't me", the same, for longer. */
        reportCooldown: duration(0).prefault('24h'),
        /** Client networks (CIDR, IPv4 or IPv6) whose logins skip the tap after a correct password. */
        trustedNetworks: z
          .array(z.string().refine((t) => parseCidr(t) !== null, { message: 'expected a network like "192.168.1.0/24" or "2001:db8::/32"' }))
          .default([]),
      })
      .strict()
      .prefault({})
      .superRefine((d, ctx) => {
        // A request must outlive every hold, or a held login would wait on a request nobody can answer.
        if (d.requestTtl < d.holdTime) ctx.addIssue({ code: 'custom', path: ['requestTtl'], message: 'must be at least holdTime' });
        for (const [protocol, hold] of Object.entries(d.holdTimes ?? {})) {
          if (hold !== undefined && d.requestTtl < hold) ctx.addIssue({ code: 'custom', path: ['requestTtl'], message: `must be at least holdTimes.${protocol}` });
        }
      }),
    portal: z
      .object({
        host: host.default('0.0.0.0'),
        port: port.default(8443),
        tls: z.boolean().default(true),
        publicUrl: z.url({ error: 'expected a URL like https://mail.example.com:8443' }).optional(),
        enabled: z.boolean().default(true),
        /** How long a web sign-in lasts (absolute). */
        sessionTtl: duration(60_000).prefault('12h'),
        /** The second factors users may set up and sign in with. */
        methods: z
          .array(z.enum(['phone', 'totp', 'passkey', 'recovery']))
          .min(1)
          .refine((ms) => new Set(ms).size === ms.length, 'each method once')
          .default(['phone', 'totp', 'passkey', 'recovery']),
        /** How many of those every user must set up: 0, a number, or all. */
        require: z.union([z.number().int().min(0).max(4), z.literal('all')]).default(0),
        /** How long "Remember this browser" skips the second step there; "off" (or 0s) turns it off. */
        rememberBrowser: z.union([z.literal('off').transform(() => 0), duration(0)]).prefault('30d'),
        /** The master key of secrets at rest (authenticator-app keys); created (0600) on first start. */
        secretKeyFile: z.string().min(1).default('data/portal-secret.key'),
        /** Hosts (`host` or `host:port`) that forward auth's `/auth/login?rd=` may return to. */
        allowedRedirects: z.array(z.string().regex(/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/, 'expected a host name like webmail.example.com or webmail.example.com:8443')).default([]),
        /** The session cookie's Domain, shared with the webmail hosts behind forward auth. */
        cookieDomain: z.string().regex(/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, 'expected a domain like example.com').optional(),
      })
      .strict()
      .prefault({}),
    push: z
      .object({
        fcm: z.object({ serviceAccountFile: z.string().min(1) }).strict().optional(),
        webhook: z
          .object({
            url: z.url({ error: 'expected an http(s) URL' }),
            secret: z.string().min(16, 'use a secret of at least 16 characters'),
            timeout: duration(100).prefault('5s'),
          })
          .strict()
          .optional(),
        webpush: z
          .object({
            /** Who the push services may contact about our pushes (RFC 8292 "sub"). */
            subject: z
              .string()
              .refine((s) => /^mailto:[^\s@]+@[^\s@]+$/.test(s) || /^https:\/\/[^\s]+$/.test(s), 'expected mailto:admin@example.com or an https:// URL'),
            /** The VAPID key pair; created on first start when missing. Every instance must use the same file. */
            vapidKeyFile: z.string().min(1).default('data/webpush-vapid.json'),
            timeout: duration(100).prefault('10s'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .prefault({}),
    /** How the upstream folds user names into one account; see UserNames. */
    users: z
      .object({
        caseSensitive: z.boolean().default(false),
        stripDomain: z.boolean().default(false),
        defaultDomain: z
          .string()
          .trim()
          .regex(/^@?[^\s@\p{Cc}\p{Cf}]+$/u, 'expected a domain like example.com')
          .transform((d) => d.replace(/^@/, ''))
          .optional(),
      })
      .strict()
      .prefault({})
      .superRefine((u, ctx) => {
        if (u.stripDomain && u.defaultDomain !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['defaultDomain'], message: 'set stripDomain or defaultDomain, not both' });
        }
      }),
    limits: limits.prefault({}),
    shutdown: z
      .object({ drainTimeout: duration(0).prefault('30s') })
      .strict()
      .prefault({}),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().prefault({}),
    /** The audit trail in the store (`mailotp audit`): how long its entries are kept. */
    audit: z
      .object({ retention: duration(3_600_000).prefault('90d') })
      .strict()
      .prefault({}),
    /** Prometheus /metrics, /healthz and /readyz on their own plain-HTTP listener; no port, no listener. */
    metrics: z.object({ host: host.default('127.0.0.1'), port: port.optional() }).strict().prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const needsTls = c.listeners.some((l) => l.tls !== 'none') || c.portal.tls;
    if (needsTls && !c.tls) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls.cert and tls.key are required by TLS listeners and the HTTPS portal' });
    const domain = c.portal.cookieDomain?.toLowerCase();
    if (domain) {
      // A webmail host outside the cookie's domain never sees the session: every forward auth would fail.
      const under = (host: string) => host === domain || host.endsWith(`.${domain}`);
      c.portal.allowedRedirects.forEach((h, i) => {
        if (!under(h.toLowerCase().replace(/:[0-9]+$/, ''))) ctx.addIssue({ code: 'custom', path: ['portal', 'allowedRedirects', i], message: `not under portal.cookieDomain ${domain}: that host would never see the session cookie` });
      });
    }
    c.listeners.forEach((l, i) => {
      if (!c.upstream[l.protocol]) {
        ctx.addIssue({ code: 'custom', path: ['listeners', i, 'protocol'], message: `no upstream.${l.protocol} is configured for this listener` });
      }
    });
  });

export type Config = z.output<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type UpstreamEndpoint = NonNullable<Config['upstream']['imap']>;
export type LimitsConfig = Config['limits'];
export type DaemonOtpConfig = Config['daemonOtp'];
export type StoreConfig = Config['store'];
export type PortalConfig = Config['portal'];
export type PushConfig = Config['push'];
export type UsersConfig = Config['users'];
export type MetricsConfig = Config['metrics'];
