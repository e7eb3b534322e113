import type { Config } from '../config/schema.js';
import { PROTOCOLS } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import type { Notifier } from '../core/ports/notifier.js';
import type { Store } from '../core/ports/store.js';
import { MeteredNotifier } from './metered-notifier.js';
import { meteredStore } from './metered-store.js';
import { MetricsServer } from './metrics-server.js';
import type { PrometheusMetrics } from './prometheus-metrics.js';
import { Readiness, tcpProbe, type ReadinessCheck } from './readiness.js';

/** The store and the notifiers as the instance uses them: counted when metrics are on. */
export function metered(metrics: PrometheusMetrics | null, store: Store, notifiers: Notifier[]): { store: Store; notifiers: Notifier[] } {
  if (!metrics) return { store, notifiers };
  return { store: meteredStore(store, metrics), notifiers: notifiers.map((n) => new MeteredNotifier(n, metrics)) };
}

/** What /readyz asks: a store round trip, and a TCP connection accepted by each configured upstream. */
export function readinessChecks(config: Config, store: Store): ReadinessCheck[] {
  const checks: ReadinessCheck[] = [{ name: 'store', probe: () => store.ping() }];
  for (const protocol of PROTOCOLS) {
    const endpoint = config.upstream[protocol];
    if (endpoint) checks.push({ name: `upstream.${protocol}`, probe: tcpProbe(endpoint.host, endpoint.port) });
  }
  return checks;
}

/** Starts the metrics listener when metrics.port is set; resolves with it and its bound port. */
export async function startMetricsListener(
  config: Config,
  metrics: PrometheusMetrics | null,
  store: Store,
  logger: Logger,
): Promise<{ server: MetricsServer; port: number } | null> {
  const { host, port } = config.metrics;
  if (!metrics || port === undefined) return null;
  const server = new MetricsServer({
    host,
    port,
    scrape: () => metrics.scrape(),
    readiness: new Readiness(readinessChecks(config, store)),
    logger: logger.child({ component: 'metrics' }),
  });
  const bound = await server.listen();
  logger.info({ host, port: bound }, 'metrics listening');
  return { server, port: bound };
}
