/** The reference proxies of the scale benchmark: the bare Node TLS pipe and the nginx mail proxy. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { testCerts } from '../test/helpers/certs.js';
import { freePorts } from '../test/helpers/free-port.js';
import { startNginx } from '../test/helpers/nginx.js';

export interface Target {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export const NGINX_MAIL_MODULE = '/usr/lib/nginx/modules/ngx_mail_module.so';

/** Starts `node dist/bench/<script>.js args` and resolves once it prints `ready`. */
async function startNodeChild(script: string, args: string[]): Promise<ChildProcess> {
  const file = fileURLToPath(new URL(`./${script}.js`, import.meta.url));
  const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export async function startTlsPipe(upstreamPort: number): Promise<Target> {
  const [port] = await freePorts(1);
  const certs = testCerts();
  const child = await startNodeChild('tls-pipe', [String(port), String(upstreamPort), certs.certFile, certs.keyFile]);
  return { port: port!, pid: child.pid!, stop: () => stopChild(child) };
}

/**
 * nginx-light's mail proxy (libnginx-mod-mail): TLS to the client, its own IMAP greeting and
 * LOGIN, auth_http to a small helper that names the plain upstream, then a byte pipe.
 */
export async function startNginxMail(upstreamPort: number, maxSessions: number): Promise<Target> {
  const [port, authPort] = await freePorts(2);
  const helper = await startNodeChild('auth-http', [String(authPort), String(upstreamPort)]);
  const certs = testCerts();
  const conns = 2 * maxSessions + 100;
  try {
    const nginx = await startNginx(port!, '', {}, {
      top: `load_module ${NGINX_MAIL_MODULE};\nworker_rlimit_nofile ${conns + 50};`,
      events: `worker_connections ${conns};`,
      bottom: `mail {
  server_name localhost;
  auth_http 127.0.0.1:${authPort}/auth;
  proxy_pass_error_message on;
  ssl_certificate ${certs.certFile};
  ssl_certificate_key ${certs.keyFile};
  server {
    listen 127.0.0.1:${port} ssl;
    protocol imap;
  }
}`,
    });
    return {
      port: port!,
      pid: nginx.pid,
      stop: async () => {
        await nginx.stop();
        await stopChild(helper);
      },
    };
  } catch (err) {
    await stopChild(helper);
    throw err;
  }
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}
