import type { FastifyReply, FastifyRequest } from 'fastify';

/** How long one `GET /signin/status?wait=1` or `/settings/pair/status?wait=1` stays open with
 * nothing decided: under the 60 s that nginx and most reverse proxies allow a response. */
export const DECISION_WAIT_MS = 25_000;
/** Open waits on this instance; past it the status is answered at once and the page polls. */
export const PER_INSTANCE = 1_000;

export interface DecisionWait {
  /** Aborted by abort() (the browser went away) or at shutdown. */
  readonly signal: AbortSignal;
  abort(): void;
  /** The wait is over: frees its place. */
  end(): void;
}

/**
 * The pages' waits for the phone: its decision on a sign-in, its answer to a QR pairing. Each holds
 * a response open until the phone has answered (on any instance: the store's events carry it) so
 * the page moves on when the user taps, not at its next poll. Bounded per session and per
 * instance; all are ended at shutdown.
 */
export class DecisionWaits {
  private readonly open = new Set<AbortController>();
  /** Sessions with a wait open: one each. A second request (another tab, a reload racing the old
   * page's request) is answered at once, as a poll, and its page asks again 1.5 s later. */
  private readonly sessions = new Set<string>();
  private closed = false;

  /** A wait for one of this session's responses, or null when it may not hold one (answer at once). */
  begin(sid: string): DecisionWait | null {
    if (this.closed || this.sessions.has(sid) || this.open.size >= PER_INSTANCE) return null;
    const ctrl = new AbortController();
    this.open.add(ctrl);
    this.sessions.add(sid);
    let ended = false;
    return {
      signal: ctrl.signal,
      abort: () => ctrl.abort(),
      end: () => {
        if (ended) return;
        ended = true;
        this.open.delete(ctrl);
        this.sessions.delete(sid);
      },
    };
  }

  /** Shutdown: every open wait answers now, and none begins after, so that closing the listener
   * waits for nothing. */
  abortAll(): void {
    this.closed = true;
    for (const ctrl of this.open) ctrl.abort();
  }

  get size(): number {
    return this.open.size;
  }
}

/** The page asked for a held answer (`?wait=1`). */
export function wantsWait(query: unknown): boolean {
  return typeof query === 'object' && query !== null && (query as Record<string, unknown>).wait === '1';
}

/**
 * Holds this response while `wait` runs (given a signal that aborts when the browser leaves or at
 * shutdown). 'refused' when the session may not hold one now (answer at once, as a poll);
 * 'aborted' when the browser left or the portal is closing (answer at once, the page asks again).
 */
export async function holdResponse(waits: DecisionWaits, sid: string, request: FastifyRequest, reply: FastifyReply, wait: (signal: AbortSignal) => Promise<unknown>): Promise<'done' | 'aborted' | 'refused'> {
  const held = waits.begin(sid);
  if (!held) return 'refused';
  // 'close' also comes after a response that was sent; only before it does it mean the browser left.
  const gone = () => {
    if (!reply.raw.writableEnded) held.abort();
  };
  reply.raw.once('close', gone);
  // Gone already, while the request was being read: nobody to wait for.
  if (request.raw.socket.destroyed) held.abort();
  try {
    await wait(held.signal);
  } finally {
    reply.raw.removeListener('close', gone);
    held.end();
  }
  return held.signal.aborted ? 'aborted' : 'done';
}
