import type { DeviceRecord, RequestRecord } from '../core/types.js';
import type { Notifier, NotifyOutcome } from '../core/ports/notifier.js';
import type { PrometheusMetrics, PushEvent } from './prometheus-metrics.js';

type PushMeter = Pick<PrometheusMetrics, 'pushSent'>;

/**
 * A notifier whose sends are counted by channel (its name), event and result. The optional calls
 * exist on the wrapper only when the wrapped notifier has them, since callers test for them.
 */
export class MeteredNotifier implements Notifier {
  readonly name: string;
  readonly requestReported?: Notifier['requestReported'];
  readonly deviceRemoved?: Notifier['deviceRemoved'];
  readonly deviceNotice?: Notifier['deviceNotice'];
  readonly close?: Notifier['close'];

  constructor(
    private readonly inner: Notifier,
    private readonly meter: PushMeter,
  ) {
    this.name = inner.name;
    const reported = inner.requestReported?.bind(inner);
    if (reported) this.requestReported = (request, device) => this.count('reported', () => reported(request, device));
    const removed = inner.deviceRemoved?.bind(inner);
    if (removed) this.deviceRemoved = (device) => this.count('device-removed', () => removed(device));
    const notice = inner.deviceNotice?.bind(inner);
    if (notice) this.deviceNotice = (device, n) => this.count('notice', () => notice(device, n));
    const close = inner.close?.bind(inner);
    if (close) this.close = close;
  }

  requestOpened(request: RequestRecord, device: DeviceRecord): Promise<NotifyOutcome> {
    return this.count('opened', () => this.inner.requestOpened(request, device));
  }

  requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<NotifyOutcome> {
    return this.count('settled', () => this.inner.requestSettled(request, device));
  }

  private async count(event: PushEvent, send: () => Promise<NotifyOutcome>): Promise<NotifyOutcome> {
    try {
      const outcome = await send();
      this.meter.pushSent(this.name, event, outcome === 'skipped' ? 'skipped' : 'sent');
      return outcome;
    } catch (err) {
      this.meter.pushSent(this.name, event, 'failed');
      throw err;
    }
  }
}
