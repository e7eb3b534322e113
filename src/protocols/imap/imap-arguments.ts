/** Reading IMAP command arguments: the astrings of LOGIN and the field list of ID. */
import type { ImapArg } from './imap-command-reader.js';

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
