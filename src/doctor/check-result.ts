/** ok: works; warn: works but needs attention soon; fail: broken; skip: not checked (and why). */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

/** One line of `mailotp doctor`. Details never hold a password, token or key material. */
export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  hint?: string;
}

/** An error's message without the "upstream HOST:PORT: " prefix the shared connector adds. */
export function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^upstream \S+: /, '');
}
