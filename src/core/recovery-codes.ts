import { randomInt } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import { KEEP_MS, type MethodProvider } from './second-factor.js';
import { digestsEqual, hashToken } from './tokens.js';
import { updateRecord } from './value-update.js';

const COUNT = 10;
/** No 0/o, 1/l/i: the codes are read off paper. 12 of 31 letters: about 59 bits each. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const LENGTH = 12;

interface RecoveryRecord {
  hashes: string[];
  createdAt: number;
}

/** Ten single-use codes for when the phone and the app are gone. Only their SHA-256 is kept. */
export class RecoveryCodes implements MethodProvider {
  readonly id = 'recovery' as const;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly audit: Logger,
    /** Tells the user's bound device that a code was used (a push through the notifiers); optional. */
    private readonly onUsed?: (user: string, left: number) => Promise<void>,
  ) {}

  private key(user: string): string {
    return `recovery:${user}`;
  }

  private async record(user: string): Promise<RecoveryRecord | null> {
    const raw = await this.store.getValue(this.key(user), this.clock.now());
    return raw ? (JSON.parse(raw) as RecoveryRecord) : null;
  }

  /** How many unused codes the user has. */
  async remaining(user: string): Promise<number> {
    return (await this.record(user))?.hashes.length ?? 0;
  }

  async isSetUp(user: string): Promise<boolean> {
    return (await this.remaining(user)) > 0;
  }

  /** Ten new codes, shown once; the old ones stop working. */
  async generate(user: string): Promise<string[]> {
    const codes = Array.from({ length: COUNT }, () => {
      const s = Array.from({ length: LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
      return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`;
    });
    const now = this.clock.now();
    const record: RecoveryRecord = { hashes: codes.map((c) => hashToken(normalise(c))), createdAt: now };
    await this.store.setValue(this.key(user), JSON.stringify(record), KEEP_MS, now);
    this.audit.info({ event: 'recovery.generated', user }, 'recovery codes generated');
    return codes;
  }

  /** True once per code: the store's atomic claim decides between two instances using the same code. */
  async use(user: string, typed: string): Promise<boolean> {
    const code = normalise(typed);
    if (code.length !== LENGTH) return false;
    const record = await this.record(user);
    if (!record) return false;
    const hash = hashToken(code);
    let found = false;
    for (const h of record.hashes) if (digestsEqual(h, hash)) found = true;
    if (!found) return false;
    const now = this.clock.now();
    if (!(await this.store.setValueIfAbsent(`recovery-used:${user}:${hash}`, '1', KEEP_MS, now))) return false;
    // Struck from the list as it is now: new codes generated (or a reset) since the read above void
    // this one, and the old list is never written back over them.
    const after = await updateRecord<RecoveryRecord>(this.store, this.key(user), KEEP_MS, () => this.clock.now(), (current) =>
      current?.hashes.includes(hash) ? { ...current, hashes: current.hashes.filter((h) => h !== hash) } : undefined,
    );
    if (!after) return false;
    const left = after.hashes.length;
    this.audit.warn({ event: 'recovery.used', user, left }, 'recovery code used');
    await this.onUsed?.(user, left).catch(() => undefined);
    return true;
  }

  async reset(user: string): Promise<void> {
    await this.store.deleteValue(this.key(user), this.clock.now());
  }
}

function normalise(typed: string): string {
  return typed.toLowerCase().replace(/[\s-]+/g, '');
}
