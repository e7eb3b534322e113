/** Shared domain types. Times are milliseconds since the epoch unless a name says otherwise. */

export type Protocol = 'imap' | 'pop3' | 'smtp';
export const PROTOCOLS: readonly Protocol[] = ['imap', 'pop3', 'smtp'];

export interface UserRecord {
  user: string;
  /** The user's "two-factor required for send/receive" switch. */
  daemonOtp: boolean;
  updatedAt: number;
}

export interface DeviceRecord {
  deviceId: string;
  user: string;
  name: string;
  /** SHA-256 of the device token, hex. The token itself is never stored. */
  tokenHash: string;
  createdAt: number;
  /** When the device last decided a request. */
  lastUsedAt?: number;
  pushToken?: string;
  pushPlatform?: 'android' | 'ios';
  /** The web authenticator app's Web Push subscription (its keys encrypt what is pushed to it). */
  webPush?: WebPushSubscription;
}

/** A browser's PushSubscription as the app sends it (RFC 8030 endpoint, RFC 8291 keys, base64url). */
export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export interface ApprovalRecord {
  user: string;
  /** The client IP this approval covers, or '*' when daemonOtp.bindTo is 'user'. */
  scope: string;
  /** The IP the approved login came from (for listing). */
  clientIp: string;
  approvedAt: number;
  expiresAt: number;
  requestId?: string;
  /** How the approved login came in, for listing (absent on approvals made before these were kept). */
  protocol?: Protocol | 'web';
  clientName?: string;
  /** Granted by the admin (`approvals grant`) for a device that can never tap; always bound to clientIp. */
  standing?: true;
}

export type RequestType = 'connection' | 'login';
/** 'expired': nobody answered before expiresAt; set once by the expiry sweep so it is announced once. */
export type RequestStatus = 'pending' | 'approved' | 'denied' | 'expired';

export interface RequestRecord {
  id: string;
  type: RequestType;
  user: string;
  deviceId: string;
  protocol: Protocol | 'web';
  clientIp: string;
  clientName?: string;
  createdAt: number;
  /** After this the request can no longer be answered. */
  expiresAt: number;
  status: RequestStatus;
  decidedAt?: number;
  /** Number-matching choices shown on the device, when used. */
  choices?: number[];
  /** The number the person sees on the sign-in page; never sent to the device. */
  matchNumber?: number;
  /** Push code: the six digits the device shows with its "Yes"; the person types them on the sign-in page. */
  code?: string;
}

/** Something the user's bound device should show that is not a request to answer. */
export interface DeviceNotice {
  /** A recovery code signed the user in on the portal: if that was not them, the account is in danger. */
  kind: 'recovery-code-used';
  user: string;
  /** Unused recovery codes left. */
  left: number;
  at: number;
}

/** A request's change, as the store logs it for the request's device and publishes it. */
export type RequestEvent =
  | { type: 'request.opened'; request: RequestRecord }
  | { type: 'request.decided'; request: RequestRecord }
  /** Denied with "this wasn't me". */
  | { type: 'request.reported'; request: RequestRecord }
  | { type: 'request.expired'; request: RequestRecord };

/** A notice for one device (see DeviceNotice), logged and published like a request's events. */
export interface NoticeEvent {
  type: 'device.notice';
  deviceId: string;
  notice: DeviceNotice;
}

/** What the store publishes to every instance. */
export type StoreEvent = (RequestEvent | NoticeEvent) & {
  /** Set on events that went through the device's event log (Store.appendEvent): their position in it. */
  eventId?: number;
};

/** A QR pairing the desktop started has moved on (the phone answered): published, never logged,
 * so that the desktop's page waiting on any instance reads the new state at once. */
export interface PairingEvent {
  type: 'pairing.link';
  linkId: string;
}

/** What the store's pub/sub carries: the logged events, and the pairing ones. */
export type PublishedEvent = StoreEvent | PairingEvent;

/** The device whose event log holds the event. */
export function eventDeviceId(event: StoreEvent): string {
  return event.type === 'device.notice' ? event.deviceId : event.request.deviceId;
}

export const REQUEST_EVENT_TYPES: readonly RequestEvent['type'][] = ['request.opened', 'request.decided', 'request.reported', 'request.expired'];
