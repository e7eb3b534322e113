import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { MailotpError } from '../core/errors.js';

/**
 * A key file read by `read`, or created (mode 0600) with `make()` when missing. Creation is atomic:
 * written to a temporary name and hard-linked into place, so two instances starting at once on a
 * shared folder end up with one key (the later one reads the earlier one's).
 */
export function loadOrCreateKeyFile<T>(file: string, read: (file: string) => T, make: () => { value: T; text: string }): { value: T; created: boolean } {
  try {
    return { value: read(file), created: false };
  } catch (err) {
    if (!(err instanceof MailotpError && /ENOENT/.test(err.message))) throw err;
  }
  const { value, text } = make();
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { value: read(file), created: false };
  } finally {
    unlinkSync(tmp);
  }
  return { value, created: true };
}
