import { tmpdir } from 'node:os';
import { parseConfig } from '../../src/config/load-config.js';
import type { Config } from '../../src/config/schema.js';

/**
 * The smallest configuration `mailotp start` accepts, around the `store` section given, parsed as
 * the daemon parses its file (relative paths against dir): for the store and the doctor's checks.
 */
export function configWithStore(store: Record<string, unknown>, dir: string = tmpdir()): Config {
  return parseConfig(
    { listeners: [{ protocol: 'imap', port: 143, tls: 'none', allowInsecure: true }], upstream: { imap: { host: 'x', port: 143, tls: 'none' } }, portal: { tls: false }, store },
    dir,
  );
}
