import type { ImapArg } from './imap-command-reader.js';
import { IMAP_AUTH_FAILED } from './imap-replies.js';
import { decodeBase64, decodeInitialResponse, parsePlain, type SaslMechanism } from '../shared/sasl.js';

export { checkCredentials, decodeBase64, decodeInitialResponse, parsePlain, saslMechanism, type Credentials, type SaslMechanism } from '../shared/sasl.js';

/** The bytes of an astring argument (atom, quoted or literal); null for a list. */
export function astringBytes(arg: ImapArg | undefined): Buffer | null {
  if (!arg || arg.type === 'list') return null;
  return arg.type === 'atom' ? Buffer.from(arg.value, 'utf8') : arg.value;
}

const MAX_CLIENT_NAME = 64;

/**
 * The client's "name" from ID arguments (RFC 2971): NIL or a list of field/value pairs.
 * undefined: no name given; null: the arguments are malformed.
 */
export function clientNameFromId(args: ImapArg[]): string | undefined | null {
  const [arg] = args;
  if (args.length !== 1 || !arg) return null;
  if (arg.type === 'atom') return arg.value.toUpperCase() === 'NIL' ? undefined : null;
  if (arg.type !== 'list' || arg.items.length % 2 !== 0) return null;
  let name: string | undefined;
  for (let i = 0; i < arg.items.length; i += 2) {
    const field = arg.items[i];
    const value = arg.items[i + 1];
    if (!field || field.type === 'list' || field.type === 'atom' || !value || value.type === 'list') return null;
    if (value.type === 'atom' && value.value.toUpperCase() !== 'NIL') return null;
    if (field.value.toString('utf8').toLowerCase() !== 'name' || value.type === 'atom') continue;
    const text = value.value.toString('utf8').replace(/[\x00-\x1f\x7f]/g, '').trim();
    if (text) name = text.slice(0, MAX_CLIENT_NAME);
  }
  return name;
}

/** What the session does next in an AUTHENTICATE exchange. */
export type SaslOutcome =
  /** Send this continuation line ("+ ...") and wait for the client's response line. */
  | { type: 'challenge'; line: string }
  | { type: 'credentials'; user: Buffer; password: Buffer }
  /** A protocol error: tagged BAD (RFC 3501 6.2.2), not a failed login. */
  | { type: 'bad'; text: string }
  /** An authentication failure decided here: tagged NO, counted as a failed login. */
  | { type: 'refused'; text: string; why: string };

const LOGIN_PROMPT_USER = Buffer.from('Username:').toString('base64');
const LOGIN_PROMPT_PASSWORD = Buffer.from('Password:').toString('base64');

/** The server side of SASL PLAIN (RFC 4616) and LOGIN, with or without an initial response. */
export class SaslExchange {
  private user: Buffer | undefined;

  constructor(readonly mechanism: SaslMechanism) {}

  /** `initial`: the SASL-IR argument (RFC 4959), if the command carried one. */
  start(initial: string | undefined): SaslOutcome {
    if (initial === undefined) return { type: 'challenge', line: this.mechanism === 'PLAIN' ? '+ ' : `+ ${LOGIN_PROMPT_USER}` };
    const response = decodeInitialResponse(initial);
    return response ? this.step(response) : { type: 'bad', text: 'Invalid base64' };
  }

  /** A continuation line from the client. */
  respond(line: string): SaslOutcome {
    if (line === '*') return { type: 'bad', text: 'Authentication cancelled' };
    const response = decodeBase64(line);
    return response ? this.step(response) : { type: 'bad', text: 'Invalid base64' };
  }

  private step(response: Buffer): SaslOutcome {
    if (this.mechanism === 'LOGIN') {
      if (this.user) return { type: 'credentials', user: this.user, password: response };
      this.user = response;
      return { type: 'challenge', line: `+ ${LOGIN_PROMPT_PASSWORD}` };
    }
    const plain = parsePlain(response);
    if (!plain) return { type: 'refused', text: IMAP_AUTH_FAILED, why: 'malformed PLAIN response' };
    // Logging in as one user to act as another is not something the proxy can authorise.
    if (plain.authzid.length > 0 && !plain.authzid.equals(plain.authcid)) {
      return { type: 'refused', text: 'NO [AUTHORIZATIONFAILED] Authorization failed.', why: 'PLAIN authzid differs from authcid' };
    }
    return { type: 'credentials', user: plain.authcid, password: plain.password };
  }
}
