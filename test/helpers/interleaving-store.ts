import type { Store } from '../../src/core/ports/store.js';

const WRITES = new Set(['setValue', 'setValueIfAbsent', 'replaceValue']);

/**
 * The store as it is, except that the next write to `key` (setValue, setValueIfAbsent or
 * replaceValue) first waits for `meanwhile`: another request's change landing between a read and
 * the write that follows it, the way two instances (or two requests on one) interleave.
 */
export function interleaveBeforeNextWrite(store: Store, key: string, meanwhile: () => Promise<unknown>): Store {
  let armed = true;
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && WRITES.has(prop)) {
        return async (...args: unknown[]) => {
          if (armed && args[0] === key) {
            armed = false;
            await meanwhile();
          }
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}
