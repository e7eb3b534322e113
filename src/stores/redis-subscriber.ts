import type { Redis } from 'ioredis';
import type { PublishedEvent } from '../core/types.js';
import { eventFields, isPublishedEvent } from './event-log.js';
import type { Unsubscribe } from '../core/ports/store.js';

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The store's pub/sub side: a second connection, created on first use, because a subscribed
 * connection can run no other command. Events reach every instance subscribed at the time of
 * publishing; Redis pub/sub keeps nothing, so events published while this instance is disconnected
 * are lost (callers re-read state on demand, and the event logs keep what a stream must replay).
 */
export class RedisSubscriber {
  private readonly handlers = new Set<(event: PublishedEvent) => void>();
  private sub: Redis | null = null;

  constructor(
    private readonly main: Redis,
    private readonly channel: string,
    private readonly onError: ((err: Error) => void) | undefined,
  ) {}

  subscribe(handler: (event: PublishedEvent) => void): Unsubscribe {
    this.ensureConnection();
    const h = (e: PublishedEvent): void => handler(e);
    this.handlers.add(h);
    return () => {
      this.handlers.delete(h);
    };
  }

  private ensureConnection(): void {
    if (this.sub) return;
    // SUBSCRIBE is sent by us on every 'ready' (first connect and each reconnect) rather than by
    // ioredis's autoResubscribe, whose internal subscribe promise rejects unhandled when the
    // connection drops mid-resubscribe; here every attempt has a catch.
    const sub = this.main.duplicate({
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      commandTimeout: undefined,
    });
    sub.on('ready', () => {
      sub.subscribe(this.channel).catch((err: unknown) => this.onError?.(toError(err)));
    });
    this.sub = sub;
    sub.on('error', (err: Error) => this.onError?.(err));
    sub.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.dispatch(message);
    });
  }

  private dispatch(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch (err) {
      this.onError?.(toError(err));
      return;
    }
    if (!isPublishedEvent(parsed)) {
      this.onError?.(new Error('ignored a malformed store event'));
      return;
    }
    // Logged events also carry `at`, which is the log's business only.
    const { eventId } = parsed as { eventId?: unknown };
    const event: PublishedEvent = { ...eventFields(parsed), ...(typeof eventId === 'number' ? { eventId } : {}) };
    for (const h of [...this.handlers]) {
      try {
        h(event);
      } catch (err) {
        this.onError?.(toError(err));
      }
    }
  }

  /** The connection, for closing; null when nothing ever subscribed. */
  close(): Redis | null {
    this.handlers.clear();
    return this.sub;
  }
}
