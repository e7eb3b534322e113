// What building a TLS context costs on the event loop: tls.createSecureContext without a CA (the
// system's CAs), with the test CA, and with the system CA bundle as `ca` (what an upstream `ca:
// /etc/ssl/certs/ca-certificates.crt` means). Node builds one per tls.connect unless given one.
// Usage (after npm run build): node bench/probes/secure-context.mjs [N=500]
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

const n = Number(process.argv[2] ?? 500);
const { testCerts } = await import(fileURLToPath(new URL('../../dist/test/helpers/certs.js', import.meta.url)));
const cases = [['no ca (system CAs)', {}], ['the test CA', { ca: testCerts().ca }]];
try {
  cases.push(['the system bundle as ca', { ca: readFileSync('/etc/ssl/certs/ca-certificates.crt') }]);
} catch {
  // No system bundle on this machine: two rows.
}
for (const [name, opts] of cases) {
  for (let i = 0; i < 20; i++) tls.createSecureContext({ minVersion: 'TLSv1.2', ...opts });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) tls.createSecureContext({ minVersion: 'TLSv1.2', ...opts });
  console.log(`${name}: ${(Number(process.hrtime.bigint() - t0) / 1e3 / n).toFixed(0)} µs per createSecureContext`);
}
