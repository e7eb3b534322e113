import type { DeviceRecord, RequestRecord } from '../core/types.js';
import type { Logger } from '../log/logger.js';
import type { Notifier } from '../core/ports/notifier.js';

/**
 * "Sends" by writing a log line: what a setup with no push service configured uses, so that an
 * admin sees each request and its outcome in the log. Only who, from where and until when; never
 * tokens, token hashes or push tokens, and not the number-matching choices.
 */
export class LogNotifier implements Notifier {
  readonly name = 'log';

  constructor(private readonly logger: Logger) {}

  async requestOpened(request: RequestRecord, device: DeviceRecord): Promise<void> {
    this.logger.info(
      {
        event: 'request.pending',
        requestId: request.id,
        type: request.type,
        user: request.user,
        deviceId: device.deviceId,
        deviceName: device.name,
        protocol: request.protocol,
        clientIp: request.clientIp,
        ...(request.clientName ? { clientName: request.clientName } : {}),
        numberMatching: (request.choices?.length ?? 0) > 0,
        expiresAt: new Date(request.expiresAt).toISOString(),
      },
      `approval request for ${request.user} waiting on device "${device.name}"`,
    );
  }

  async requestSettled(request: RequestRecord, device: DeviceRecord | null): Promise<void> {
    this.logger.info(
      {
        event: 'request.settled',
        requestId: request.id,
        user: request.user,
        deviceId: device?.deviceId ?? request.deviceId,
        clientIp: request.clientIp,
        status: request.status,
      },
      `approval request for ${request.user} ${request.status}`,
    );
  }
}
