import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load-config.js';

const base = {
  tls: { cert: 'certs/server.crt', key: 'certs/server.key' },
  upstream: { imap: { host: 'mail.internal', port: 993, tls: 'implicit' } },
};

describe('config: listeners[].proxyProtocol', () => {
  it('is false unless set, and true is accepted now that it is served', () => {
    const c = parseConfig(
      {
        ...base,
        listeners: [
          { protocol: 'imap', port: 993, tls: 'implicit' },
          { protocol: 'imap', port: 10993, tls: 'implicit', proxyProtocol: true },
          { protocol: 'imap', port: 10143, tls: 'starttls', proxyProtocol: true },
        ],
      },
      '/etc/mailotp',
    );
    assert.deepEqual(
      c.listeners.map((l) => l.proxyProtocol),
      [false, true, true],
    );
  });
});
