import type { Store } from '../../src/core/ports/store.js';

const WRITES = new Set(['setValue', 'setValueIfAbsent', 'replaceValue']);

/**
 * The store as it is, except that once, `meanwhile` runs in the middle of a caller's
 * read-change-write of `key`: before the next write to it ('before-write': setValue,
 * setValueIfAbsent or replaceValue) or right after the next read of it returns ('after-read'),
 * the way two instances (or two requests on one) interleave.
 */
export function interleave(store: Store, key: string, meanwhile: () => Promise<unknown>, when: 'before-write' | 'after-read' = 'before-write'): Store {
  let armed = true;
  const hooked = (prop: string) => (when === 'before-write' ? WRITES.has(prop) : prop === 'getValue');
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const call = (args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(target, args);
      if (typeof prop !== 'string' || !hooked(prop)) return (value as (...a: unknown[]) => unknown).bind(target);
      return async (...args: unknown[]) => {
        const mine = armed && args[0] === key;
        if (mine) armed = false;
        if (mine && when === 'before-write') await meanwhile();
        const result = await call(args);
        if (mine && when === 'after-read') await meanwhile();
        return result;
      };
    },
  });
}
