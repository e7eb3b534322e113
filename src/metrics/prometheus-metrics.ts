import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../core/clock.js';
import type { MeteredCore, Metrics, ProtocolMeter } from '../core/metrics.js';
import { PROTOCOLS, type Protocol, type RequestRecord } from '../core/types.js';
import { ProtocolCounts, PrometheusProtocolMeter } from './protocol-meter.js';

/** Every metric name starts with this. */
export const METRIC_PREFIX = 'mailotp_';

/** Where an operator's latency questions fall: sub-millisecond store calls to multi-second logins. */
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** A person reaching for the phone: seconds to minutes (the request lives 5 minutes by default). */
const HUMAN_BUCKETS = [1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300];

export type RequestOutcome = 'approved' | 'denied' | 'reported' | 'expired';
export type PushResult = 'sent' | 'skipped' | 'failed';
export type PushEvent = 'opened' | 'settled' | 'reported' | 'device-removed' | 'notice';

/**
 * The Prometheus side of the metrics port, in its own registry (never prom-client's global one, so
 * two instances in one process, as in tests, do not collide). Every label takes values from a
 * small fixed set: protocols, result kinds, store operations, channel names; never a user or an IP.
 */
export class PrometheusMetrics implements Metrics {
  readonly registry = new Registry();
  private readonly counts = new Map<Protocol, ProtocolCounts>();

  readonly connectionsAccepted = this.counter('connections_accepted_total', 'Client connections handed to a protocol session', ['protocol']);
  readonly connectionsRefused = this.counter('connections_refused_total', 'Client connections refused by limits.maxConnections or limits.maxConnectionsPerIp', ['protocol', 'cap']);
  readonly logins = this.counter('logins_total', 'Mail logins answered, by the core result (approved, pending-timeout, denied, bad-password, no-device, rate-limited, unavailable, aborted)', ['protocol', 'result']);
  readonly holds = this.counter('holds_total', 'Logins held for a tap, by how the hold ended (approved, denied, pending-timeout, aborted, unavailable)', ['protocol', 'outcome']);
  readonly approvalToLogin = this.histogram('approval_to_login_seconds', 'From the tap (approval recorded) to the held login being answered OK', ['protocol'], FAST_BUCKETS);
  readonly requestsOpened = this.counter('requests_opened_total', 'Approval requests opened (connection: a mail login; login: a web sign-in)', ['type']);
  readonly requestOutcomes = this.counter('request_outcomes_total', 'Approval requests settled on this instance: approved, denied, reported ("this wasn\'t me") or expired unanswered', ['type', 'outcome']);
  readonly requestToDecision = this.histogram('request_decision_seconds', 'From a request being opened to its answer on the device', ['type', 'outcome'], HUMAN_BUCKETS);
  readonly pushSends = this.counter('push_sends_total', 'Notifier calls by channel (log, webhook, fcm, webpush), event and result', ['channel', 'event', 'result']);
  readonly storeSeconds = this.histogram('store_operation_seconds', 'Store operations (SQLite or Redis) by method, failures included', ['op'], FAST_BUCKETS);
  readonly storeErrors = this.counter('store_errors_total', 'Store operations that failed, by method', ['op']);
  readonly upstreamConnect = this.histogram('upstream_connect_seconds', 'Connections to the upstream mail server (TCP, STARTTLS and TLS), by result (ok, failed)', ['protocol', 'result'], FAST_BUCKETS);
  readonly upstreamLogin = this.histogram('upstream_login_seconds', 'Password checks at the upstream, connection included, by verdict (ok, bad-password, unavailable)', ['protocol', 'result'], FAST_BUCKETS);

  constructor(private readonly clock: Clock) {
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    const counts = this.counts;
    new Gauge({
      name: `${METRIC_PREFIX}connections`,
      help: 'Client connections open now, by state: pre-login (greeting to login answer), held (waiting for a tap), spliced (logged in)',
      labelNames: ['protocol', 'state'] as const,
      registers: [this.registry],
      collect() {
        for (const protocol of PROTOCOLS) {
          const c = counts.get(protocol);
          if (!c) continue;
          this.set({ protocol, state: 'pre-login' }, c.open - c.held - c.spliced);
          this.set({ protocol, state: 'held' }, c.held);
          this.set({ protocol, state: 'spliced' }, c.spliced);
        }
      },
    });
  }

  protocol(protocol: Protocol, core: MeteredCore): ProtocolMeter {
    let counts = this.counts.get(protocol);
    if (!counts) {
      counts = new ProtocolCounts();
      this.counts.set(protocol, counts);
    }
    return new PrometheusProtocolMeter(protocol, core, this, counts, this.clock);
  }

  connectionRefused(protocol: Protocol, cap: string): void {
    this.connectionsRefused.inc({ protocol, cap });
  }

  requestOpened(request: RequestRecord): void {
    this.requestsOpened.inc({ type: request.type });
  }

  /** A request settled here; an answered one also records how long the person took. */
  requestSettled(request: RequestRecord, outcome: RequestOutcome): void {
    this.requestOutcomes.inc({ type: request.type, outcome });
    if (outcome !== 'expired' && request.decidedAt !== undefined) {
      this.requestToDecision.observe({ type: request.type, outcome }, Math.max(0, request.decidedAt - request.createdAt) / 1000);
    }
  }

  pushSent(channel: string, event: PushEvent, result: PushResult): void {
    this.pushSends.inc({ channel, event, result });
  }

  storeOperation(op: string, seconds: number, ok: boolean): void {
    this.storeSeconds.observe({ op }, seconds);
    if (!ok) this.storeErrors.inc({ op });
  }

  /** A counter in this registry; its name gets the prefix. */
  private counter<const L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return new Counter({ name: `${METRIC_PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }

  private histogram<const L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    return new Histogram({ name: `${METRIC_PREFIX}${name}`, help, labelNames, buckets, registers: [this.registry] });
  }

  /** The exposition text and its content type, for GET /metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
