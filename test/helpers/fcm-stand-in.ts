import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';

/** Pieces for standing in for fcm.googleapis.com on 127.0.0.1 under the real firebase-admin. */

/**
 * Every connection firebase-admin opens for fcm.googleapis.com goes to the local server instead,
 * still verified as fcm.googleapis.com, against the test CA only.
 */
export class LocalFcmAgent extends https.Agent {
  constructor(
    private readonly port: number,
    private readonly ca: Buffer,
  ) {
    super({ keepAlive: false });
  }

  override createConnection(_options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): Duplex {
    const socket = tls.connect({ host: '127.0.0.1', port: this.port, ca: [this.ca], servername: 'fcm.googleapis.com' });
    if (callback) {
      socket.once('secureConnect', () => callback(null, socket));
      socket.once('error', (err) => callback(err, socket));
    }
    return socket;
  }
}
