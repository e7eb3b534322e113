import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The smallest config `mailotp start` accepts, written as dir/mailotp.json: one IMAPS listener, an
 * upstream nobody answers (start only warns), SQLite and the portal's key in `state`.
 */
export function writeMinimalConfig(
  dir: string,
  opts: { state: string; cert: string; key: string; imapPort?: number; portalHost?: string; portalPort?: number; level?: string },
): string {
  const file = join(dir, 'mailotp.json');
  writeFileSync(
    file,
    JSON.stringify({
      listeners: [{ protocol: 'imap', host: '127.0.0.1', port: opts.imapPort ?? 0, tls: 'implicit' }],
      tls: { cert: opts.cert, key: opts.key },
      upstream: { imap: { host: '127.0.0.1', port: 9, tls: 'none', connectTimeout: '1s' } },
      store: { path: join(opts.state, 'mailotp.db') },
      portal: { host: opts.portalHost ?? '127.0.0.1', port: opts.portalPort ?? 0, tls: true, secretKeyFile: join(opts.state, 'portal-secret.key') },
      log: { level: opts.level ?? 'info' },
    }),
    { mode: 0o644 },
  );
  return file;
}

/** Waits for the "mailotp started" line of a `mailotp start` child; resolves with it parsed. */
export function waitForStart(proc: ChildProcess, timeoutMs = 40_000): Promise<{ portal: { port: number } }> {
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start in ${timeoutMs} ms: ${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const started = out.split('\n').find((l) => l.includes('"mailotp started"'));
      if (started) {
        clearTimeout(timer);
        resolve(JSON.parse(started) as { portal: { port: number } });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${out}`));
    });
  });
}

/** SIGTERM and wait for the exit, if it still runs. */
export async function stopChild(proc: ChildProcess | null): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}
