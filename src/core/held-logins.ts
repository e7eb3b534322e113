import { linkedAbort } from './clock.js';
import type { LoginAttempt, VerifiedUpstream } from './login-types.js';

/** One attempt as watched by HeldLogins. */
export interface HeldLoginGuard<S extends VerifiedUpstream> {
  /** The attempt to decide: its onHold takes a place (or refuses) and its signal ends a refused wait. */
  attempt: LoginAttempt<S>;
  /** True when the attempt asked to be held past the cap (its wait was ended at once). */
  refused(): boolean;
  /** Gives the place back once the attempt is decided and stops watching the attempt's own signal; safe to call more than once. */
  release(): void;
}

/**
 * Logins held at once per user in this process, each of them with a logged-in upstream session
 * open while it waits for the tap. Without a cap, someone who knows the password could open
 * thousands of upstream sessions in the user's name by logging in from many connections.
 *
 * It watches the attempt rather than the decision's code: the place is taken when the core starts
 * holding the login (onHold) and a login past the cap has its wait ended through its abort signal,
 * so the decision itself (open or join the request, wait, close the upstream on refusal) stays one
 * piece of code.
 */
export class HeldLogins {
  private readonly byUser = new Map<string, number>();

  constructor(private readonly maxPerUser: number) {}

  /** How many logins of the user are held now. */
  count(user: string): number {
    return this.byUser.get(user) ?? 0;
  }

  guard<S extends VerifiedUpstream>(attempt: LoginAttempt<S>): HeldLoginGuard<S> {
    // The attempt's own signal (the client leaving) aborts `cut` too, until release() unlinks it.
    const cut = linkedAbort(attempt.signal);
    let holding = false;
    let refused = false;
    const onHold = (): void => {
      const n = this.count(attempt.user);
      if (n >= this.maxPerUser) {
        refused = true;
        cut.abort();
        return;
      }
      this.byUser.set(attempt.user, n + 1);
      holding = true;
      attempt.onHold?.();
    };
    return {
      attempt: { ...attempt, onHold, signal: cut.signal },
      refused: () => refused,
      release: () => {
        cut.clear();
        if (!holding) return;
        holding = false;
        const n = this.count(attempt.user) - 1;
        if (n > 0) this.byUser.set(attempt.user, n);
        else this.byUser.delete(attempt.user);
      },
    };
  }
}
