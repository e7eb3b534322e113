/** A private nginx (Debian nginx-light, which has auth_request) on a free port, in its own temp folder. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface NginxHandle {
  dir: string;
  pid: number;
  errorLog(): string;
  stop(): Promise<void>;
}

export interface NginxExtra {
  /** Main-context text before everything else (load_module, worker_rlimit_nofile) and after the http block (mail). */
  top?: string;
  bottom?: string;
  /** Body of the events block [worker_connections 64;]. */
  events?: string;
}

/**
 * Starts nginx in the foreground (daemon off, no master process) with `http` as the body of its
 * http block; `{dir}` in it is replaced by the temp folder. Resolves once the port accepts.
 */
export async function startNginx(port: number, http: string, files: Record<string, string> = {}, extra: NginxExtra = {}): Promise<NginxHandle> {
  if (!existsSync(NGINX_BIN)) throw new Error('nginx is not installed: run scripts/setup-test-env.sh as root (package nginx-light)');
  const dir = mkdtempSync(join(tmpdir(), 'mailotp-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/tmp/${t};`).join('\n  ');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${extra.top ?? ''}
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { ${extra.events ?? 'worker_connections 64;'} }
http {
  access_log ${dir}/access.log;
  ${temps}
  ${http.replaceAll('{dir}', dir)}
}
${(extra.bottom ?? '').replaceAll('{dir}', dir)}
`,
  );
  const child: ChildProcess = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const errorLog = () => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      const log = errorLog();
      await stop();
      throw new Error(`nginx exited: ${stderr}${log}`);
    }
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen on ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { dir, pid: child.pid!, errorLog, stop };
}
