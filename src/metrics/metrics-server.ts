import http from 'node:http';
import type { Logger } from '../log/logger.js';
import type { Readiness } from './readiness.js';

export interface MetricsServerDeps {
  host: string;
  port: number;
  scrape(): Promise<{ contentType: string; body: string }>;
  readiness: Readiness;
  logger: Logger;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The operator's own listener, apart from the portal: GET /metrics (Prometheus text), /healthz
 * (the process answers) and /readyz (the store and the upstreams answer). Plain HTTP, meant for a
 * loopback or management address; it shows counts, never a user name or an address.
 */
export class MetricsServer {
  private server: http.Server | null = null;

  constructor(private readonly deps: MetricsServerDeps) {}

  listen(): Promise<number> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.deps.logger.warn({ err: err instanceof Error ? err.message : String(err), path: req.url }, 'metrics request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': JSON_TYPE });
        res.end('{"error":"internal"}\n');
      });
    });
    // Scrapers keep connections open; none should hold up a shutdown.
    server.keepAliveTimeout = 5_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.deps.host, port: this.deps.port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.deps.logger.error({ err: err.message }, 'metrics listener error'));
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : this.deps.port);
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': JSON_TYPE });
      res.end('{"error":"method not allowed"}\n');
      return;
    }
    switch (path) {
      case '/metrics': {
        const { contentType, body } = await this.deps.scrape();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      case '/healthz':
        res.writeHead(200, { 'content-type': JSON_TYPE, 'cache-control': 'no-store' });
        res.end('{"status":"ok"}\n');
        return;
      case '/readyz': {
        const report = await this.deps.readiness.check();
        res.writeHead(report.ready ? 200 : 503, { 'content-type': JSON_TYPE, 'cache-control': 'no-store' });
        res.end(`${JSON.stringify(report.ready ? { status: 'ready' } : { status: 'not ready', failed: report.failed })}\n`);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': JSON_TYPE });
        res.end('{"error":"not found"}\n');
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
