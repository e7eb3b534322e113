/** What shutdown asks of a pre-login session: the protocol's goodbye, at once. */
export interface ShutdownTarget {
  shutDown(): void;
}

/**
 * The process's pre-login sessions (held logins included), so that SIGTERM can say each
 * protocol's goodbye at once instead of letting them wait out the drain. A session leaves the
 * set when it closes or is spliced: a spliced session is not ours to end early.
 */
export class LiveSessions {
  private readonly sessions = new Set<ShutdownTarget>();
  private shuttingDown = false;

  /** Registers a session; the returned function unregisters it. After shutDownAll a newcomer is shut down at once. */
  add(session: ShutdownTarget): () => void {
    if (this.shuttingDown) {
      session.shutDown();
      return () => undefined;
    }
    this.sessions.add(session);
    return () => this.sessions.delete(session);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Says goodbye to every registered session; returns how many there were. */
  shutDownAll(): number {
    this.shuttingDown = true;
    const all = [...this.sessions];
    this.sessions.clear();
    for (const s of all) s.shutDown();
    return all.length;
  }
}
