import type { RequestRecord, RequestType } from './types.js';

/** A request as the device API, the event stream and the webhook show it (INTERFACE.md, "Device API"). */
export interface ApiRequest {
  id: string;
  type: RequestType;
  user: string;
  protocol: RequestRecord['protocol'];
  clientIp: string;
  clientName: string | null;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601. */
  expiresAt: string;
  choices?: number[];
  /** Push code: the six digits to show with a "Yes" button. */
  code?: string;
}

/**
 * The public shape of a request. Built field by field, not spread, so that internal fields
 * (deviceId, status, whatever is added to RequestRecord later) never leak to phones or webhooks.
 */
export function toApiRequest(r: RequestRecord): ApiRequest {
  const view: ApiRequest = {
    id: r.id,
    type: r.type,
    user: r.user,
    protocol: r.protocol,
    clientIp: r.clientIp,
    clientName: r.clientName ?? null,
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
  };
  if (r.choices && r.choices.length > 0) view.choices = [...r.choices];
  if (r.code !== undefined) view.code = r.code;
  return view;
}
