import type { Store } from './ports/store.js';
import type { Clock } from './clock.js';
import { updateValue } from './value-update.js';

export type CooldownKind = 'deny' | 'report';

export interface Cooldown {
  kind: CooldownKind;
  until: number;
}

export interface CooldownSettings {
  denyMs: number;
  reportMs: number;
}

/**
 * Against push fatigue: after a deny (or a "this wasn't me" report) the same user and client
 * address get no new push for a while. Kept with the store's short-lived values, so every
 * instance sees it. Errors propagate so the caller fails closed.
 */
export class Cooldowns {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly settings: CooldownSettings,
  ) {}

  private key(user: string, clientIp: string): string {
    // The address last and the user encoded, so no two (user, address) pairs share a key.
    return `cooldown:${encodeURIComponent(user)}:${clientIp}`;
  }

  /** Starts the cool-down. A deny never shortens a report's longer one. Returns it, or null when off (0). */
  async start(user: string, clientIp: string, kind: CooldownKind): Promise<Cooldown | null> {
    const ms = kind === 'report' ? this.settings.reportMs : this.settings.denyMs;
    if (ms <= 0) return null;
    const now = this.clock.now();
    const cooldown: Cooldown = { kind, until: now + ms };
    const value = JSON.stringify(cooldown);
    if (kind === 'report') await this.store.setValue(this.key(user, clientIp), value, ms, now);
    // Compare-and-set: a report landing between the read and the write is not overwritten either.
    else await updateValue(this.store, this.key(user, clientIp), ms, () => this.clock.now(), (raw) => (raw !== null && this.parse(raw).kind === 'report' ? undefined : value));
    return cooldown;
  }

  /** The cool-down in force for this user and address, or null. */
  async active(user: string, clientIp: string): Promise<Cooldown | null> {
    const raw = await this.store.getValue(this.key(user, clientIp), this.clock.now());
    return raw === null ? null : this.parse(raw);
  }

  private parse(raw: string): Cooldown {
    try {
      const v = JSON.parse(raw) as Partial<Cooldown>;
      if ((v.kind === 'deny' || v.kind === 'report') && typeof v.until === 'number') return { kind: v.kind, until: v.until };
    } catch {
      // fall through: an unreadable value still means someone started a cool-down
    }
    return { kind: 'deny', until: this.clock.now() };
  }

  /** Ends it now (an admin's decision). True when there was one. */
  clear(user: string, clientIp: string): Promise<boolean> {
    return this.store.deleteValue(this.key(user, clientIp), this.clock.now());
  }
}
