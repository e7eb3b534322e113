import type { Config } from '../config/schema.js';
import { PROTOCOLS, type Protocol } from './types.js';

/**
 * How long common clients wait for a reply before they give up, as their sources or manuals say.
 * A held login must answer before that, or the client reads the late reply as the answer to its
 * next command (swaks at 30 s) or shows a network error instead of the retry advice.
 */
export interface ClientTimeout {
  client: string;
  protocols: readonly Protocol[];
  seconds: number;
  source: string;
}

export const CLIENT_TIMEOUTS: readonly ClientTimeout[] = [
  { client: 'mbsync (isync)', protocols: ['imap'], seconds: 20, source: 'mbsync(1) "Timeout": default 20' },
  { client: 'swaks', protocols: ['smtp'], seconds: 30, source: 'swaks(1) "--timeout": default 30s' },
  { client: 'Outlook', protocols: ['imap', 'pop3', 'smtp'], seconds: 60, source: 'Account settings > More settings > Advanced > Server timeouts: 1 minute' },
  { client: 'Apple Mail', protocols: ['imap', 'pop3', 'smtp'], seconds: 60, source: 'not published; assumed like Outlook' },
  { client: 'Thunderbird', protocols: ['imap', 'pop3', 'smtp'], seconds: 100, source: 'mailnews.tcptimeout: 100' },
  { client: 'getmail', protocols: ['imap', 'pop3'], seconds: 180, source: 'getmail6 retrievers.py: timeout default 180' },
  { client: 'fetchmail', protocols: ['imap', 'pop3'], seconds: 300, source: 'fetchmail -V: "Server nonresponse timeout is 300 seconds (default)"' },
  // msmtp: `msmtp -P` shows "timeout = off" (no timeout of its own), so it is not in the table.
];

/** A hold must leave the client at least this much of its timeout for the reply to arrive. */
export const CLIENT_TIMEOUT_MARGIN_MS = 5_000;

/**
 * SMTP has no progress line and swaks, the shortest-waiting SMTP client above, gives up at 30 s:
 * without an explicit holdTimes.smtp the SMTP hold is holdTime, but at most this.
 */
export const SMTP_DEFAULT_HOLD_CAP_MS = 25_000;

export interface HoldTimeSettings {
  holdTime: number;
  holdTimes?: Partial<Record<Protocol, number>> | undefined;
  /** Cadence of the IMAP progress lines, which reset the client's read timer. */
  progressInterval: number;
}

/** The hold of each protocol: holdTimes.X, else holdTime (for SMTP at most 25 s). */
export function resolveHoldTimes(s: Pick<HoldTimeSettings, 'holdTime' | 'holdTimes'>): Record<Protocol, number> {
  return {
    imap: s.holdTimes?.imap ?? s.holdTime,
    pop3: s.holdTimes?.pop3 ?? s.holdTime,
    smtp: s.holdTimes?.smtp ?? Math.min(s.holdTime, SMTP_DEFAULT_HOLD_CAP_MS),
  };
}

export interface HoldTimeWarning {
  /** The config key to change. */
  path: string;
  message: string;
}

/**
 * The configured holds that leave a common client less than CLIENT_TIMEOUT_MARGIN_MS of its
 * timeout. IMAP clients hear "* OK Waiting ..." every progressInterval, so for them the longest
 * silence is the shorter of the hold and that interval; POP3 and SMTP are silent for the whole hold.
 */
export function holdTimeWarnings(s: HoldTimeSettings, protocols: readonly Protocol[] = PROTOCOLS): HoldTimeWarning[] {
  const holds = resolveHoldTimes(s);
  const warnings: HoldTimeWarning[] = [];
  for (const protocol of PROTOCOLS.filter((p) => protocols.includes(p))) {
    const silence = protocol === 'imap' ? Math.min(holds.imap, s.progressInterval) : holds[protocol];
    const path =
      protocol === 'imap' && s.progressInterval < holds.imap
        ? 'daemonOtp.progressInterval'
        : s.holdTimes?.[protocol] !== undefined
          ? `daemonOtp.holdTimes.${protocol}`
          : 'daemonOtp.holdTime';
    const reached = CLIENT_TIMEOUTS.filter((c) => c.protocols.includes(protocol) && silence > c.seconds * 1000 - CLIENT_TIMEOUT_MARGIN_MS);
    if (reached.length === 0) continue;
    const names = reached.map((c) => `${c.client} (${c.seconds} s)`).join(', ');
    warnings.push({
      path,
      message: `a held ${protocol.toUpperCase()} login stays silent for up to ${silence / 1000} s, within ${CLIENT_TIMEOUT_MARGIN_MS / 1000} s of or past the timeout of ${names}: they may give up before the answer`,
    });
  }
  return warnings;
}

/** The warnings for a config: its served protocols' holds, when daemon OTP holds logins at all. */
export function configHoldTimeWarnings(config: Pick<Config, 'daemonOtp' | 'listeners'>): HoldTimeWarning[] {
  if (!config.daemonOtp.enabled) return [];
  return holdTimeWarnings(config.daemonOtp, [...new Set(config.listeners.map((l) => l.protocol))]);
}
