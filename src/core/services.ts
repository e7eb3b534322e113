import type { Config } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import type { Notifier } from './ports/notifier.js';
import type { Store } from './ports/store.js';
import { ApprovalService } from './approval-service.js';
import { AuditTrail } from './audit-trail.js';
import { systemScheduler, type Clock, type Scheduler } from './clock.js';
import { Cooldowns } from './cooldowns.js';
import { recoveryNotice } from './device-notices.js';
import { DeviceService } from './device-service.js';
import { HeldLogins } from './held-logins.js';
import { resolveHoldTimes } from './hold-times.js';
import { LoginAuthorizer } from './login-authorizer.js';
import { PairingService } from './pairing-service.js';
import { PasskeyService } from './passkey-service.js';
import { RateLimiter } from './rate-limiter.js';
import { RecoveryCodes } from './recovery-codes.js';
import { RememberedBrowsers } from './remembered-browsers.js';
import { SecondFactorService, type MethodProvider } from './second-factor.js';
import { SecretBox } from './secret-box.js';
import { TotpService } from './totp-service.js';
import { TrustedNetworks } from './trusted-networks.js';
import { RequestService, type RequestSettings } from './request-service.js';
import { UserNames } from './user-names.js';
import { UserService } from './user-service.js';
import { WebSessionService } from './web-session-service.js';

/** The core, built from its slices of the config; shared by the servers and the admin CLI. */
export interface CoreServices {
  store: Store;
  clock: Clock;
  devices: DeviceService;
  /** The user's own settings (the daemon-OTP switch): every change an admin or the user makes, audited. */
  users: UserService;
  approvals: ApprovalService;
  requests: RequestService;
  limiter: RateLimiter;
  authorizer: LoginAuthorizer;
  /** The one canonicaliser of user names: the CLI and every service use it. */
  names: UserNames;
  cooldowns: Cooldowns;
  pairing: PairingService;
  webSessions: WebSessionService;
  /** The web sign-in's second factors: who has which, the default, the admin's policy. */
  secondFactors: SecondFactorService;
  totp: TotpService;
  recoveryCodes: RecoveryCodes;
  /** The decisions kept in the store (audit.retention); the log's audit events are teed into it. */
  audit: AuditTrail;
  passkeys: PasskeyService;
  /** "Remember this browser": the browsers that skip the second step (portal.rememberBrowser). */
  rememberedBrowsers: RememberedBrowsers;
}

/** The core as the portal and the CLI use it: every service, never the store behind them. */
export type CoreApi = Omit<CoreServices, 'store'>;

/** How long the sign-in's second step may take. */
const WEB_PENDING_TTL_MS = 10 * 60_000;

export interface CoreDeps {
  store: Store;
  clock: Clock;
  /** The hold's and the sweep's timers (the system's unless a test drives them). */
  scheduler?: Scheduler;
  logger: Logger;
  notifiers: readonly Notifier[];
  secretKey: Buffer;
  /** How often a held login re-reads its request and the expiry sweep runs; the defaults unless a test says otherwise. */
  requestTimings?: Pick<RequestSettings, 'recheckMs' | 'sweepIntervalMs'>;
}

export function buildCore(config: Config, deps: CoreDeps): CoreServices {
  const { store, clock, logger } = deps;
  const d = config.daemonOtp;
  const audit = logger.child({ component: 'core' });
  const devices = new DeviceService(store, clock, audit);
  const approvals = new ApprovalService(store, clock, audit, { ttlMs: d.approvalTtl, bindTo: d.bindTo, trustedNetworks: new TrustedNetworks(d.trustedNetworks) });
  const names = new UserNames(config.users);
  const users = new UserService(store, clock, audit, { enabled: d.enabled, enforce: d.enforce });
  const cooldowns = new Cooldowns(store, clock, { denyMs: d.denyCooldown, reportMs: d.reportCooldown });
  const requests = new RequestService(store, clock, approvals, deps.notifiers, audit, { requestTtlMs: d.requestTtl, ...deps.requestTimings }, cooldowns, deps.scheduler ?? systemScheduler);
  const l = config.limits;
  const limiter = new RateLimiter(store, clock, approvals, {
    failedLoginsPerUser: l.failedLoginsPerUser,
    failedLoginsPerIp: l.failedLoginsPerIp,
    failedLoginWindowMs: l.failedLoginWindow,
    pushesPerUserPerHour: l.pushesPerUserPerHour,
  });
  const authorizer = new LoginAuthorizer(store, approvals, requests, limiter, audit, {
    enabled: d.enabled,
    enforce: d.enforce,
    holdTimeMs: d.holdTime,
    holdTimesMs: resolveHoldTimes(d),
  }, names, cooldowns, new HeldLogins(l.maxHeldLoginsPerUser));
  const pairing = new PairingService(store, clock, devices, deps.notifiers, audit);
  const webSessions = new WebSessionService(store, clock, audit, { ttlMs: config.portal.sessionTtl, pendingTtlMs: WEB_PENDING_TTL_MS });
  const totp = new TotpService(store, clock, new SecretBox(deps.secretKey), audit, 'mailotp');
  const recoveryCodes = new RecoveryCodes(store, clock, audit, recoveryNotice(store, clock, deps.notifiers, audit, requests));
  const passkeys = new PasskeyService(store, clock, audit, 'mailotp');
  const phone: MethodProvider = {
    id: 'phone',
    isSetUp: async (user) => (await store.getDeviceByUser(user)) !== null,
    reset: async (user) => {
      await pairing.clear(user);
    },
  };
  const p = config.portal;
  const secondFactors = new SecondFactorService([phone, totp, passkeys, recoveryCodes], store, clock, audit, { methods: p.methods, require: p.require });
  const trail = new AuditTrail(store, clock, logger.child({ component: 'audit' }), { retentionMs: config.audit.retention }, deps.scheduler ?? systemScheduler);
  const rememberedBrowsers = new RememberedBrowsers(store, clock, audit, { ttlMs: p.rememberBrowser });
  return { store, clock, devices, users, approvals, requests, limiter, authorizer, names, cooldowns, pairing, webSessions, secondFactors, totp, recoveryCodes, passkeys, audit: trail, rememberedBrowsers };
}
