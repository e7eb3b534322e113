import type { Logger } from '../log/logger.js';
import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';

/** The second factors of the web sign-in, in the order the pages list them. */
export type MethodId = 'phone' | 'totp' | 'passkey' | 'recovery';
export const METHOD_IDS: readonly MethodId[] = ['phone', 'totp', 'passkey', 'recovery'];

/** One kind of second factor: whether a user has it, and how an admin (or the user) removes it. */
export interface MethodProvider {
  readonly id: MethodId;
  isSetUp(user: string): Promise<boolean>;
  reset(user: string): Promise<void>;
}

/** The admin's policy (config portal.methods, portal.require). */
export interface SecondFactorPolicy {
  methods: readonly MethodId[];
  /** How many methods every user must set up: a number, or 'all' the allowed ones. */
  require: number | 'all';
}

/** Long enough to be "until changed"; the store's values all carry a TTL. */
export const KEEP_MS = 100 * 365 * 24 * 3_600_000;

/** What each user has set up, their default method, and the admin's policy over both. */
export class SecondFactorService {
  private readonly providers = new Map<MethodId, MethodProvider>();

  constructor(
    providers: readonly MethodProvider[],
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly audit: Logger,
    readonly policy: SecondFactorPolicy,
  ) {
    for (const p of providers) this.addProvider(p);
  }

  /** Adds a method (the passkeys, wired in by main). */
  addProvider(p: MethodProvider): void {
    this.providers.set(p.id, p);
  }

  provider(m: MethodId): MethodProvider | undefined {
    return this.providers.get(m);
  }

  /** The methods this mailotp can offer: allowed by the admin and implemented. */
  available(): MethodId[] {
    return METHOD_IDS.filter((m) => this.policy.methods.includes(m) && this.providers.has(m));
  }

  /** What the user has set up, among the allowed methods, in display order. */
  async methodsOf(user: string): Promise<MethodId[]> {
    const ms = this.available();
    const set = await Promise.all(ms.map((m) => this.providers.get(m)!.isSetUp(user)));
    return ms.filter((_, i) => set[i]);
  }

  private defaultKey(user: string): string {
    return `sf-default:${user}`;
  }

  /** The method the second step offers first: the user's choice while it is set up, else the first one set up. */
  async defaultMethod(user: string, methods?: readonly MethodId[]): Promise<MethodId | null> {
    const ms = methods ?? (await this.methodsOf(user));
    const chosen = (await this.store.getValue(this.defaultKey(user), this.clock.now())) as MethodId | null;
    if (chosen && ms.includes(chosen)) return chosen;
    // Recovery codes are the last resort, never offered first while anything else is there.
    return ms.find((m) => m !== 'recovery') ?? ms[0] ?? null;
  }

  /** False when the user has not set that method up. */
  async setDefault(user: string, m: MethodId): Promise<boolean> {
    if (!(await this.methodsOf(user)).includes(m)) return false;
    await this.store.setValue(this.defaultKey(user), m, KEEP_MS, this.clock.now());
    this.audit.info({ event: 'user.default-method', user, method: m }, 'default second factor chosen');
    return true;
  }

  /** How many more methods the policy wants this user to set up (0: none). */
  async missing(user: string, methods?: readonly MethodId[]): Promise<number> {
    const have = (methods ?? (await this.methodsOf(user))).length;
    const available = this.available().length;
    const want = this.policy.require === 'all' ? available : Math.min(this.policy.require, available);
    return Math.max(0, want - have);
  }

  /** Removes one method of the user; false when it was not set up (or is not implemented here). */
  async reset(user: string, m: MethodId, via: 'cli' | 'portal'): Promise<boolean> {
    const p = this.providers.get(m);
    if (!p || !(await p.isSetUp(user))) return false;
    await p.reset(user);
    // Warn: removing a second factor weakens the account, and the admin CLI shows warnings only.
    this.audit.warn({ event: 'user.method-reset', user, method: m, via }, 'second factor removed');
    return true;
  }
}
