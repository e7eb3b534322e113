import { readFileSync } from 'node:fs';
import tls from 'node:tls';

/** TLS 1.2 is the floor everywhere mailotp terminates or originates TLS. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

/**
 * Holds the server certificate and key. `reload()` (SIGHUP) re-reads them; servers then call
 * `setSecureContext(secureOptions())` so new connections get the new pair while sessions already
 * running keep theirs. SNI-ready: the SNICallback always answers with the current context.
 */
export class TlsContextProvider {
  private material: { cert: Buffer; key: Buffer };
  private context: tls.SecureContext;

  constructor(private readonly files: { cert: string; key: string }) {
    this.material = this.read();
    this.context = tls.createSecureContext(this.secureOptions());
  }

  private read(): { cert: Buffer; key: Buffer } {
    return { cert: readFileSync(this.files.cert), key: readFileSync(this.files.key) };
  }

  /** Re-reads the files; throws (keeping the old pair) when they are unreadable or do not match. */
  reload(): void {
    const material = this.read();
    const context = tls.createSecureContext({ ...material, minVersion: MIN_TLS_VERSION });
    this.material = material;
    this.context = context;
  }

  /** Certificate, key and protocol floor: what tls.Server#setSecureContext takes. */
  secureOptions(): tls.SecureContextOptions {
    return { cert: this.material.cert, key: this.material.key, minVersion: MIN_TLS_VERSION };
  }

  /**
   * Options for new TLSSocket(socket, { ...these, isServer: true }) (STARTTLS, PROXY): the current
   * context, built once per (re)load. Certificate and key options instead would make Node parse
   * them again for every connection.
   */
  socketOptions(): tls.TLSSocketOptions {
    return { secureContext: this.context, SNICallback: (_servername, cb) => cb(null, this.context) };
  }

  /** Options for tls.createServer and https.createServer (setSecureContext(secureOptions()) on reload). */
  serverOptions(): tls.TlsOptions {
    return {
      ...this.secureOptions(),
      SNICallback: (_servername, cb) => cb(null, this.context),
    };
  }
}
