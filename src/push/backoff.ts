/** Waits ms, or rejects with Error(closedMessage) at once when the signal aborts (a notifier closing). */
export function abortableSleep(ms: number, signal: AbortSignal, closedMessage: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error(closedMessage));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error(closedMessage));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
