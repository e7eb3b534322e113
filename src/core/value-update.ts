import { MailotpError } from './errors.js';
import type { Store } from './ports/store.js';

/** Rounds of read, change and compare-and-set before giving up: contention on one user's record is rare. */
const MAX_ROUNDS = 8;

/**
 * Reads the value at key, lets `change` compute the next one from it, and writes that only if the
 * value is still what was read (Store.replaceValue, or setValueIfAbsent when there was none); on a
 * concurrent change it reads again. `change` returns undefined to write nothing. Resolves to what
 * was written, or undefined. A read-modify-write with plain setValue would let two instances (or two
 * requests on one) overwrite each other: e.g. a sign-in writing back a list that a removal had just
 * shortened, bringing the removed entry back.
 */
export async function updateValue(store: Store, key: string, ttlMs: number, now: () => number, change: (current: string | null) => string | undefined): Promise<string | undefined> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await store.getValue(key, now());
    const next = change(current);
    if (next === undefined) return undefined;
    const written = current === null ? await store.setValueIfAbsent(key, next, ttlMs, now()) : await store.replaceValue(key, current, next, ttlMs, now());
    if (written) return next;
  }
  // Refused like a store outage: the caller answers with a temporary error, nothing half-written.
  throw new MailotpError('MAILOTP_ERR_STORE_UNAVAILABLE', `too many concurrent changes to one record (${MAX_ROUNDS} tries)`);
}

/** updateValue for a JSON record: `change` gets the parsed record (null when absent). */
export async function updateRecord<T>(store: Store, key: string, ttlMs: number, now: () => number, change: (current: T | null) => T | undefined): Promise<T | undefined> {
  let result: T | undefined;
  await updateValue(store, key, ttlMs, now, (raw) => {
    result = change(raw === null ? null : (JSON.parse(raw) as T));
    return result === undefined ? undefined : JSON.stringify(result);
  });
  return result;
}
