import type { CreateRequestResult, LoggedRequestEvent, Store } from '../core/ports/store.js';
import type { StoreEvent } from '../core/types.js';
import type { PrometheusMetrics } from './prometheus-metrics.js';

type StoreMeter = Pick<PrometheusMetrics, 'storeOperation' | 'requestOpened' | 'requestSettled'>;

/** What a successful call of these operations means for the request counters. */
const OBSERVERS: Record<string, (meter: StoreMeter, result: unknown, args: unknown[]) => void> = {
  createRequest(meter, result) {
    const r = result as CreateRequestResult;
    if (r.created) meter.requestOpened(r.request);
  },
  // Counted where the decision is committed, on the instance that made it: one count per request
  // across instances (a subscriber would count every event once per instance).
  appendEvent(meter, _result, args) {
    const event = args[0] as StoreEvent;
    if (event.type === 'request.decided' && (event.request.status === 'approved' || event.request.status === 'denied')) {
      meter.requestSettled(event.request, event.request.status);
    } else if (event.type === 'request.reported') {
      meter.requestSettled(event.request, 'reported');
    }
  },
  // The store hands each expired request to exactly one instance's sweep.
  expireRequests(meter, result) {
    for (const e of result as LoggedRequestEvent[]) meter.requestSettled(e.request, 'expired');
  },
};

/** Every method of the store object, own or inherited (its class and the classes it extends). */
function methodNames(store: Store): string[] {
  const names = new Set<string>();
  for (let o: object | null = store; o && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) {
      if (name !== 'constructor' && typeof (store as unknown as Record<string, unknown>)[name] === 'function') names.add(name);
    }
  }
  return [...names];
}

/**
 * The store, with every asynchronous operation timed (and its failures counted) under its method
 * name, and the request counters fed from the operations that commit a request's fate.
 * The methods are found on the object rather than listed here: the Store interface grows, and a
 * method added later is timed without touching this file. Synchronous ones (subscribe) pass
 * through untimed; anything that is not a method is read from the wrapped store itself.
 */
export function meteredStore(inner: Store, meter: StoreMeter): Store {
  const metered = Object.create(inner) as Record<string, unknown>;
  for (const op of methodNames(inner)) {
    const fn = (inner as unknown as Record<string, (...args: unknown[]) => unknown>)[op]!;
    const observe = OBSERVERS[op];
    metered[op] = (...args: unknown[]): unknown => {
      const started = performance.now();
      const out = fn.apply(inner, args);
      if (!(out instanceof Promise)) return out;
      return out.then(
        (result: unknown) => {
          meter.storeOperation(op, (performance.now() - started) / 1000, true);
          observe?.(meter, result, args);
          return result;
        },
        (err: unknown) => {
          meter.storeOperation(op, (performance.now() - started) / 1000, false);
          throw err;
        },
      );
    };
  }
  return metered as unknown as Store;
}
