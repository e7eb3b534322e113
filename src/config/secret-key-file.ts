import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { MailotpError } from '../core/errors.js';
import { loadOrCreateKeyFile } from './key-file.js';

/** The master key of secrets at rest: 32 random bytes, base64, one line. */
export function readSecretKey(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new MailotpError('MAILOTP_ERR_CONFIG', `portal.secretKeyFile: cannot read ${file}: ${(err as Error).message}`);
  }
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length < 32 || !/^[A-Za-z0-9+/]+=*$/.test(text.trim())) {
    throw new MailotpError('MAILOTP_ERR_CONFIG', `portal.secretKeyFile: ${file} does not hold a key (at least 32 bytes, base64)`);
  }
  return key;
}

/**
 * The key in `file`, created there (mode 0600) on first start. Every instance must read the same
 * file: a lost or different key makes every stored authenticator-app key unreadable (those users
 * then sign in with another method, or an admin resets them).
 */
export function loadOrCreateSecretKey(file: string): { key: Buffer; created: boolean } {
  const { value, created } = loadOrCreateKeyFile(file, readSecretKey, () => {
    const key = randomBytes(32);
    return { value: key, text: `${key.toString('base64')}\n` };
  });
  return { key: value, created };
}
