import type { ServerResponse } from 'node:http';
import type { DeviceService } from '../core/device-service.js';
import type { RequestService } from '../core/request-service.js';
import { eventDeviceId, type RequestRecord } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import type { LoggedEvent } from '../core/ports/store.js';
import { toApiRequest } from '../core/request-view.js';

/** What EventSource clients wait before reconnecting. */
const SSE_RETRY_MS = 3_000;
/** A client that stops reading is dropped rather than buffered for without limit. */
const MAX_SSE_BUFFERED_BYTES = 256 * 1024;
/** Event ids are store event ids: decimal integers, far below 2^53. */
const EVENT_ID = /^\d{1,15}$/;

/** The position a reconnecting client asks to resume after, or null for a fresh start. */
export function parseLastEventId(header: string | string[] | undefined, query: unknown): number | null {
  const fromQuery = typeof query === 'object' && query !== null ? (query as Record<string, unknown>).lastEventId : undefined;
  const raw = typeof header === 'string' ? header : typeof fromQuery === 'string' ? fromQuery : undefined;
  // Anything else (ids of an older version, garbage) is a fresh start, which loses nothing.
  return raw !== undefined && EVENT_ID.test(raw.trim()) ? Number(raw.trim()) : null;
}

/** One open `text/event-stream` response. */
export class SseStream {
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly res: ServerResponse) {}

  open(heartbeatMs: number, onBeat: () => void): void {
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-store, no-transform',
      // The stream is this connection's last response: ending it (shutdown, eviction) frees the
      // socket at once instead of leaving a keep-alive connection that holds server.close().
      Connection: 'close',
      // nginx and friends would otherwise hold events back in their buffers.
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    this.res.socket?.setNoDelay(true);
    this.write(`retry: ${SSE_RETRY_MS}\n\n`);
    this.heartbeat = setInterval(() => {
      this.write(': heartbeat\n\n');
      onBeat();
    }, heartbeatMs);
    this.heartbeat.unref();
  }

  send(event: string, id: number, data: unknown): void {
    // JSON.stringify escapes newlines, so one data: line always holds the whole object.
    this.write(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Moves the client's Last-Event-ID on without an event (an EventSource dispatches nothing for it). */
  sendId(id: number): void {
    this.write(`id: ${id}\n\n`);
  }

  private write(chunk: string): void {
    const res = this.res;
    if (res.destroyed || res.writableEnded) return;
    if (res.writableLength > MAX_SSE_BUFFERED_BYTES) {
      res.destroy();
      return;
    }
    res.write(chunk);
  }

  get ended(): boolean {
    return this.res.writableEnded || this.res.destroyed;
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  dispose(): void {
    clearInterval(this.heartbeat);
  }
}

export interface DeviceEventsDeps {
  requests: RequestService;
  devices: DeviceService;
  logger: Logger;
  heartbeatMs: number;
}

/** What the stream sends before it goes live. */
type Start =
  | { kind: 'resume'; events: LoggedEvent[] }
  /** reset: the client asked to resume from further back than the logs keep, so it starts over. */
  | { kind: 'fresh' | 'reset'; cursor: number; pending: RequestRecord[] };

/**
 * One device's event stream. The device's event log in the store is the source of truth: pub/sub
 * messages and the heartbeat only wake the stream, which then reads the log after the last id it
 * sent. Ids are given out in commit order across instances, so reading "after my last id" never
 * skips an event and never repeats one, whichever instance appended it or serves the stream.
 */
export class DeviceEventStream {
  readonly sse: SseStream;
  /** The id of the last event sent (or the snapshot's position): the client's Last-Event-ID. */
  private cursor = 0;
  /** Requests the snapshot sent already, so their own opened events only move the id on. */
  private readonly inSnapshot = new Set<string>();
  private live = false;
  private pumping = false;
  private wokenWhilePumping = false;
  private closed = false;
  private readonly unsubscribe: () => void;

  constructor(
    readonly deviceId: string,
    res: ServerResponse,
    private readonly deps: DeviceEventsDeps,
  ) {
    this.sse = new SseStream(res);
    // Subscribed before anything is read, so that nothing appended meanwhile goes unnoticed.
    this.unsubscribe = deps.requests.subscribe((event) => {
      if (eventDeviceId(event) !== deviceId) return;
      if (event.eventId !== undefined && event.eventId <= this.cursor) return;
      this.wake();
    });
  }

  /** Reads what to send first. Throws when the store is down; nothing is written by then. */
  async prepare(lastEventId: number | null): Promise<Start> {
    const { requests } = this.deps;
    let kind: 'fresh' | 'reset' = 'fresh';
    if (lastEventId !== null) {
      const read = await requests.eventsSince(this.deviceId, lastEventId);
      if (read.complete) {
        this.cursor = lastEventId;
        return { kind: 'resume', events: read.events };
      }
      kind = 'reset';
    }
    // The position first, then the list: whatever happens in between is both in the list and
    // after the position, and the snapshot set keeps it from being sent twice.
    const cursor = await requests.eventCursor();
    const pending = await requests.listPending(this.deviceId);
    return { kind, cursor, pending };
  }

  /** Opens the response, sends the start, and goes live. */
  start(start: Start, onOpen: () => void): void {
    if (this.closed) return;
    onOpen();
    this.sse.open(this.deps.heartbeatMs, () => {
      this.wake();
      void this.endIfRemoved();
    });
    if (start.kind === 'resume') {
      for (const e of start.events) this.deliver(e);
    } else {
      this.cursor = start.cursor;
      if (start.kind === 'reset') this.sse.send('reset', start.cursor, {});
      for (const r of start.pending) {
        this.sse.send('request', start.cursor, toApiRequest(r));
        this.inSnapshot.add(r.id);
      }
    }
    this.live = true;
    // Whatever was appended after the reads above, or before the subscription was active.
    this.wake();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.sse.dispose();
  }

  private deliver(e: LoggedEvent): void {
    if (e.eventId <= this.cursor) return;
    this.cursor = e.eventId;
    if (e.type === 'device.notice') {
      const n = e.notice;
      this.sse.send('notice', e.eventId, { kind: n.kind, user: n.user, left: n.left, at: new Date(n.at).toISOString() });
      return;
    }
    const r = e.request;
    if (e.type === 'request.opened') {
      if (this.inSnapshot.has(r.id)) this.sse.sendId(e.eventId);
      else this.sse.send('request', e.eventId, toApiRequest(r));
    } else {
      this.sse.send('settled', e.eventId, { id: r.id, status: r.status });
      // After the settled a client already handles, so one that knows no 'reported' still clears it.
      if (e.type === 'request.reported') this.sse.send('reported', e.eventId, { id: r.id, status: r.status });
    }
  }

  /**
   * A cleared or replaced device (on any instance) must not keep its stream: ending it makes the
   * app reconnect, get 401 and show that it is no longer bound. Checked on each heartbeat.
   */
  private async endIfRemoved(): Promise<void> {
    try {
      if ((await this.deps.devices.get(this.deviceId)) === null && !this.closed) this.sse.end();
    } catch {
      // The store is down: the next heartbeat asks again; the stream is not the place to decide.
    }
  }

  private wake(): void {
    if (!this.live || this.closed) return;
    if (this.pumping) {
      this.wokenWhilePumping = true;
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
    });
  }

  private async pump(): Promise<void> {
    do {
      this.wokenWhilePumping = false;
      let read;
      try {
        read = await this.deps.requests.eventsSince(this.deviceId, this.cursor);
      } catch (err) {
        // The next wake or heartbeat reads again; the log keeps what was missed.
        this.deps.logger.debug({ deviceId: this.deviceId, err: err instanceof Error ? err.message : String(err) }, 'event stream cannot read the log');
        return;
      }
      if (this.closed) return;
      if (!read.complete) {
        // Behind the retention while connected (a very long store outage): the client reconnects
        // with its Last-Event-ID and is told to start over.
        this.sse.end();
        return;
      }
      for (const e of read.events) this.deliver(e);
    } while (this.wokenWhilePumping && !this.closed);
  }
}
