import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { CheckResult } from './check-result.js';

const DAY_MS = 86_400_000;

/** The first certificate of a PEM file (the server's own; the rest is its chain). */
export function readCertificate(file: string): X509Certificate {
  return new X509Certificate(readFileSync(file));
}

/**
 * tls.cert and tls.key: readable, a matching pair, valid now, and not expiring within `warnDays`
 * (a renewal that did not happen, or was not reloaded, shows here first).
 */
export function checkCertificate(files: { cert: string; key: string }, now: number, warnDays: number): CheckResult {
  const name = `certificate ${files.cert}`;
  let cert: X509Certificate;
  try {
    cert = readCertificate(files.cert);
  } catch (err) {
    return { name, status: 'fail', detail: `cannot read a PEM certificate (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, hint: 'check tls.cert' };
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(readFileSync(files.key)))) {
      return { name, status: 'fail', detail: `does not match the key ${files.key}`, hint: 'tls.cert and tls.key must be one pair (renewed one but not the other?)' };
    }
  } catch (err) {
    return { name, status: 'fail', detail: `cannot read the key ${files.key} (${(err as NodeJS.ErrnoException).code ?? 'not a PEM private key'})`, hint: 'check tls.key and its permissions' };
  }
  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  const until = new Date(notAfter).toISOString();
  const subject = cert.subjectAltName ?? cert.subject.replace(/\n/g, ', ');
  if (now >= notAfter) {
    return { name, status: 'fail', detail: `expired on ${until} (${subject})`, hint: 'renew it, then reload: systemctl reload mailotp (SIGHUP)' };
  }
  if (now < notBefore) {
    return { name, status: 'fail', detail: `not valid before ${new Date(notBefore).toISOString()}`, hint: 'check the clock of this machine' };
  }
  const whole = Math.floor((notAfter - now) / DAY_MS);
  const days = `${whole} day${whole === 1 ? '' : 's'}`;
  if (notAfter - now < warnDays * DAY_MS) {
    return { name, status: 'warn', detail: `expires in ${days}, on ${until} (${subject})`, hint: 'renew it, then reload: systemctl reload mailotp (SIGHUP)' };
  }
  return { name, status: 'ok', detail: `valid until ${until}, ${days} left, matches the key (${subject})` };
}
