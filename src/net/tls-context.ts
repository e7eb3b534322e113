import { readFileSync } from 'node:fs';
import tls from 'node:tls';

/** TLS 1.2 is the floor everywhere mailotp terminates or originates TLS. */
export const MIN_TLS_VERSION = 'TLSv1.2' as const;

/**
 * Holds the server certificate and key. `reload()` (SIGHUP) swaps them for new connections
 * while sessions already running keep theirs. SNI-ready: every server asks `serverOptions()`,
 * whose SNICallback always answers with the current context.
 */
export class TlsContextProvider {
  private context: tls.SecureContext;

  constructor(private readonly files: { cert: string; key: string }) {
    this.context = this.load();
  }

  private load(): tls.SecureContext {
    return tls.createSecureContext({
      cert: readFileSync(this.files.cert),
      key: readFileSync(this.files.key),
      minVersion: MIN_TLS_VERSION,
    });
  }

  /** Re-reads the files; throws (keeping the old pair) when they are unreadable or do not match. */
  reload(): void {
    this.context = this.load();
  }

  current(): tls.SecureContext {
    return this.context;
  }

  /** Options for tls.createServer / new TLSSocket(..., { isServer: true }). */
  serverOptions(): tls.TlsOptions {
    return {
      secureContext: this.context,
      minVersion: MIN_TLS_VERSION,
      SNICallback: (_servername, cb) => cb(null, this.context),
    };
  }
}
