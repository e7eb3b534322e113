import { randomUUID } from 'node:crypto';
import type { Agent } from 'node:http';
import { cert, deleteApp, initializeApp, type App, type Credential } from 'firebase-admin/app';
import { getMessaging, type Message, type Messaging } from 'firebase-admin/messaging';
import { checkServiceAccount } from './fcm-service-account.js';
import { MailotpError } from '../core/errors.js';
import type { DeviceRecord, RequestRecord } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import { clearMessage, noticeMessage, requestMessage } from './fcm-messages.js';
import { RetryableError, withRetries } from './backoff.js';
import { DeliveryState, type RetrySettings } from './delivery-state.js';
import { PushTokenRejectedError, type DeviceNotice, type Notifier, type NotifyOutcome } from '../core/ports/notifier.js';

export interface FcmOptions extends RetrySettings {
  projectId: string;
  /** A service account's in production; any object with getAccessToken() in tests. */
  credential: Credential;
  /** Carries every request to FCM (tests route it to a local server). */
  httpAgent?: Agent;
  /** The portal's public URL, passed on as `portalUrl`. */
  publicUrl?: string;
}

/** What FCM says about a token that will never work again (v1's UNREGISTERED maps to the first). */
const TOKEN_GONE = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
/** Failures that another attempt cannot fix: the message or the credential is wrong. */
const PERMANENT = new Set([
  'messaging/invalid-argument',
  'messaging/invalid-recipient',
  'messaging/invalid-payload',
  'messaging/invalid-data-payload-key',
  'messaging/payload-size-limit-exceeded',
  'messaging/invalid-options',
  'messaging/invalid-package-name',
  'messaging/mismatched-credential',
  'messaging/third-party-auth-error',
  'messaging/authentication-error',
  'app/invalid-credential',
]);

function errorCode(err: unknown): string {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : 'unknown';
}

/**
 * Pushes to the device's Firebase Cloud Messaging token through the real firebase-admin library:
 * one notification when a request opens, one data-only "clear" when it is settled. The token and
 * the credential never reach a log line or an error message.
 */
export class FcmNotifier implements Notifier {
  readonly name = 'fcm';
  private readonly app: App;
  private readonly messaging: Messaging;
  private readonly state: DeliveryState;

  /** The production constructor: a service account JSON file downloaded from the Firebase console. */
  static fromServiceAccountFile(file: string, logger: Logger, opts: Omit<FcmOptions, 'projectId' | 'credential'> = {}): FcmNotifier {
    const projectId = checkServiceAccount(file);
    let credential: Credential;
    try {
      credential = cert(file);
    } catch {
      // firebase-admin's message may quote the file; the key must not reach the log.
      throw new MailotpError('MAILOTP_ERR_CONFIG', `push.fcm.serviceAccountFile: ${file} is not a usable service account key`);
    }
    return new FcmNotifier({ ...opts, projectId, credential }, logger);
  }

  constructor(
    private readonly opts: FcmOptions,
    private readonly logger: Logger,
  ) {
    this.state = new DeliveryState(this.name, opts);
    // A name of its own: several notifiers (tests, reloads) must not share firebase-admin's default app.
    this.app = initializeApp(
      { credential: opts.credential, projectId: opts.projectId, ...(opts.httpAgent ? { httpAgent: opts.httpAgent } : {}) },
      `mailotp-fcm-${randomUUID()}`,
    );
    this.messaging = getMessaging(this.app);
  }

  async requestOpened(request: RequestRecord, device: DeviceRecord): Promise<NotifyOutcome> {
    const token = device.pushToken;
    if (!token) {
      this.logger.debug({ requestId: request.id, deviceId: device.deviceId }, 'no push token registered; nothing sent to FCM');
      return 'skipped';
    }
    await this.deliver(request, token, () => requestMessage(request, token, this.state.clock.now(), this.opts.publicUrl), 'request');
  }

  async requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<NotifyOutcome> {
    this.state.settle(request);
    const token = device?.pushToken;
    if (!token) return 'skipped';
    await this.deliver(request, token, () => clearMessage(request, token, this.state.clock.now()), 'clear');
  }

  /** A notification with the notice as data (`action: "notice"`), so the app can show it in its own words. */
  async deviceNotice(device: DeviceRecord, notice: DeviceNotice): Promise<NotifyOutcome> {
    const token = device.pushToken;
    if (!token) return 'skipped';
    await this.deliver(null, token, () => noticeMessage(notice, token), 'notice');
  }

  async close(): Promise<void> {
    this.state.close();
    await deleteApp(this.app).catch(() => undefined);
  }

  /** Sends with bounded exponential backoff; the message is rebuilt per attempt so its TTL stays true. */
  private async deliver(request: RequestRecord | null, token: string, build: () => Message, kind: 'request' | 'clear' | 'notice'): Promise<void> {
    const onRetry = (attempt: number, waitMs: number, err: string): void =>
      this.logger.debug({ ...(request ? { requestId: request.id } : {}), kind, attempt, waitMs, err }, 'fcm send failed, retrying');
    await withRetries(this.state.retryOptions(onRetry, `fcm ${kind}`), async (attempt, last) => {
      // Too late to be of use: the request can no longer be answered, or it was already cleared.
      if (request && kind === 'request' && attempt > 1 && (this.state.clock.now() >= request.expiresAt || this.state.isSettled(request.id))) {
        throw new Error(`fcm: gave up on ${kind} after ${attempt - 1} attempt(s), it is no longer pending: ${last}`);
      }
      try {
        await this.messaging.send(build());
      } catch (err) {
        const code = errorCode(err);
        if (TOKEN_GONE.has(code)) throw new PushTokenRejectedError(token, code);
        const failure = `${code}: ${scrub(err, token)}`;
        if (PERMANENT.has(code)) throw new Error(`fcm refused the ${kind} message: ${failure}`);
        throw new RetryableError(failure);
      }
    });
  }
}

/** The error's message with the token cut out, should a server ever echo it. */
function scrub(err: unknown, token: string): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split(token).join('[token]').slice(0, 300);
}

