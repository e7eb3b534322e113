import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Config, ListenerConfig, UpstreamEndpoint } from '../config/schema.js';
import type { Protocol } from '../core/types.js';
import { silentLogger } from '../log/logger.js';
import { checkServiceAccount } from '../push/fcm-service-account.js';
import { readVapidKeys } from '../push/vapid-keys.js';
import { createStore } from '../stores/create-store.js';
import { ImapUpstream } from '../upstream/imap-upstream.js';
import { Pop3Upstream } from '../upstream/pop3-upstream.js';
import { SmtpUpstream } from '../upstream/smtp-upstream.js';
import { readCertificate } from './certificate-check.js';
import { reasonOf, type CheckResult } from './check-result.js';
import { clip, probeMailPort } from './mail-probe.js';

/** Where to reach a server bound to `host`: a wildcard address is reached on loopback. */
export function reachableHost(host: string, override: string | undefined): string {
  if (override) return override;
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/**
 * A listener greets as its protocol over its TLS mode, and presents the certificate in tls.cert
 * (another one means a renewal that was not reloaded).
 */
export async function checkListener(listener: ListenerConfig, config: Config, opts: { host?: string; timeoutMs: number }): Promise<CheckResult> {
  const host = reachableHost(listener.host, opts.host);
  const name = `listener ${listener.protocol} ${host}:${listener.port} (${listener.tls})`;
  if (listener.proxyProtocol) {
    return { name, status: 'skip', detail: 'proxyProtocol: the port expects a PROXY header from the load balancer', hint: 'check it through the load balancer' };
  }
  if (listener.port === 0) return { name, status: 'skip', detail: 'port 0 is chosen at start; nothing to probe' };
  // The certificate is checked on its own (certificate ...); here only that this port answers with it.
  const endpoint: UpstreamEndpoint = { host, port: listener.port, tls: listener.tls, verify: false, connectTimeout: opts.timeoutMs };
  try {
    const { greeting, certificate } = await probeMailPort(listener.protocol, endpoint);
    const served = `${clip(greeting, 60)}`;
    if (certificate && config.tls) {
      let expected: string | null = null;
      try {
        expected = readCertificate(config.tls.cert).fingerprint256;
      } catch {
        // Unreadable: the certificate check says so.
      }
      if (expected && certificate.fingerprint256 !== expected) {
        return { name, status: 'warn', detail: `${served}; serves another certificate than ${config.tls.cert} (valid until ${new Date(certificate.validTo).toISOString()})`, hint: 'reload after renewing: systemctl reload mailotp (SIGHUP)' };
      }
    }
    return { name, status: 'ok', detail: served };
  } catch (err) {
    return { name, status: 'fail', detail: reasonOf(err), hint: 'is mailotp running with this config? (systemctl status mailotp)' };
  }
}

/** The upstream answers with its protocol's greeting over its TLS mode, certificate verified as configured. */
export async function checkUpstream(protocol: Protocol, endpoint: UpstreamEndpoint, timeoutMs: number): Promise<CheckResult> {
  const name = `upstream ${protocol} ${endpoint.host}:${endpoint.port} (${endpoint.tls})`;
  try {
    const { greeting } = await probeMailPort(protocol, { ...endpoint, connectTimeout: Math.min(endpoint.connectTimeout, timeoutMs) });
    const trust = endpoint.tls === 'none' ? 'plain' : endpoint.verify ? 'certificate verified' : 'certificate NOT verified (verify: false)';
    return { name, status: 'ok', detail: `${clip(greeting, 60)}; ${trust}` };
  } catch (err) {
    return { name, status: 'fail', detail: reasonOf(err), hint: `is the mail server up and reachable from here? check upstream.${protocol} (host, port, tls, ca, servername)` };
  }
}

export interface TestAccount {
  user: string;
  password: string;
}

/** A real login on the upstream with the test account, then logout. */
export async function checkUpstreamLogin(protocol: Protocol, endpoint: UpstreamEndpoint, account: TestAccount, timeoutMs: number): Promise<CheckResult> {
  const name = `upstream ${protocol} login as ${account.user}`;
  const logger = silentLogger();
  const opts = { loginTimeoutMs: timeoutMs };
  const client = { ip: '127.0.0.1', port: 0, name: 'mailotp-doctor' };
  const bounded = { ...endpoint, connectTimeout: Math.min(endpoint.connectTimeout, timeoutMs) };
  const result =
    protocol === 'imap'
      ? await new ImapUpstream(bounded, logger, opts).login(account.user, account.password, client)
      : protocol === 'pop3'
        ? await new Pop3Upstream(bounded, logger, opts).login(account.user, account.password, client)
        : await new SmtpUpstream(bounded, logger, opts).login(account.user, account.password, client);
  switch (result.kind) {
    case 'ok':
      result.session.close();
      return { name, status: 'ok', detail: 'the upstream accepted the password' };
    case 'bad-password':
      return { name, status: 'fail', detail: `the upstream refused the password${result.reply ? `: ${clip(result.reply)}` : ''}`, hint: 'check --user and the password file' };
    case 'unavailable':
      return { name, status: 'fail', detail: reasonOf(result.reason), hint: `check upstream.${protocol}` };
  }
}

/** The store as the doctor's line names it: the file, the Redis URL (password hidden) or the Sentinel set. */
export function storeLabel(store: Config['store']): string {
  if (store.driver === 'sqlite') return `sqlite ${store.path}`;
  if (store.sentinels) return `redis sentinel ${store.sentinelName} via ${store.sentinels.join(', ')}`;
  return `redis ${redactUrl(store.url ?? '')}`;
}

function storeHint(store: Config['store']): string {
  if (store.driver === 'sqlite') return 'check the file and its folder are writable by this user';
  if (store.sentinels) {
    const auth = 'NOAUTH or WRONGPASS from the sentinels: store.sentinelPassword; from Redis: store.password';
    const tls = 'a certificate error or a closed connection: TLS on both sides (store.tls), and store.ca the CA that signed their certificates?';
    return `are the sentinels running, reachable, and do they know store.sentinelName? ${auth}; ${tls}`;
  }
  return `is Redis running and reachable? check store.url (a password goes in it: redis://:PASSWORD@HOST:PORT/DB; rediss:// for TLS, store.ca for a private CA)`;
}

/** Writes, reads and deletes a throwaway value in the configured store, as every instance does. */
export async function checkStore(config: Config, now: number): Promise<CheckResult> {
  const name = `store ${storeLabel(config.store)}`;
  if (config.store.driver === 'sqlite' && !existsSync(config.store.path)) {
    return { name, status: 'fail', detail: 'the database file does not exist', hint: 'mailotp start creates it: is mailotp running with this config, and is the path the same?' };
  }
  // The connection's own error (ECONNREFUSED, auth) says more than the refused command does.
  let connectionError: Error | null = null;
  const store = await createStore(config.store, { onError: (err) => (connectionError ??= err) });
  try {
    await store.ping();
    const key = `doctor:${randomBytes(8).toString('hex')}`;
    const value = randomBytes(8).toString('hex');
    await store.setValue(key, value, 60_000, now);
    const read = await store.getValue(key, now);
    if (read !== value) return { name, status: 'fail', detail: 'a value written was not read back', hint: 'another process may be using the same keys' };
    await store.deleteValue(key, now);
    if ((await store.getValue(key, now)) !== null) return { name, status: 'fail', detail: 'a value deleted was still there' };
    return { name, status: 'ok', detail: 'write, read and delete round trip' };
  } catch (err) {
    const why = (connectionError as Error | null)?.message ?? reasonOf(err);
    return { name, status: 'fail', detail: why, hint: storeHint(config.store) };
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** redis://user:secret@host -> redis://user:***@host: the output must never show a password. */
export function redactUrl(url: string): string {
  return url.replace(/^(\w+:\/\/)([^@/]*:)?[^@/]*@/, (_m, scheme: string, user: string | undefined) => `${scheme}${user ?? ''}***@`);
}

/** Answers when the URL's server returns any HTTP status; its status and how long it took. */
function httpStatus(url: string, method: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? https.request : http.request;
    // The portal's own certificate is checked separately; here only whether it answers.
    const req = get(url, { method, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err));
    req.end();
  });
}

/** The push channels can be used: the FCM key parses, the webhook answers, the VAPID key pair is there. */
export async function checkPush(config: Config, timeoutMs: number): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const { fcm, webhook, webpush } = config.push;
  if (fcm) {
    const name = `push fcm ${fcm.serviceAccountFile}`;
    try {
      results.push({ name, status: 'ok', detail: `service account of project ${checkServiceAccount(fcm.serviceAccountFile)}` });
    } catch (err) {
      results.push({ name, status: 'fail', detail: reasonOf(err).replace(/^push\.fcm\.serviceAccountFile: \S+ /, ''), hint: 'download a service account key from the Firebase console' });
    }
  }
  if (webhook) {
    // Only the origin: a webhook's path or query is often its secret (Slack, Teams, ntfy topics).
    const name = `push webhook ${new URL(webhook.url).origin}`;
    try {
      const status = await httpStatus(webhook.url, 'HEAD', Math.min(webhook.timeout, timeoutMs));
      results.push(status >= 500 ? { name, status: 'warn', detail: `answers HEAD with ${status}`, hint: 'the receiver reports a server error' } : { name, status: 'ok', detail: `answers (HEAD: ${status})` });
    } catch (err) {
      results.push({ name, status: 'fail', detail: reasonOf(err), hint: 'is the webhook receiver up and reachable from here? check push.webhook.url' });
    }
  }
  if (webpush) {
    const name = `push webpush ${webpush.vapidKeyFile}`;
    if (!existsSync(webpush.vapidKeyFile)) {
      results.push({ name, status: 'fail', detail: 'the VAPID key file does not exist', hint: 'mailotp start creates it: is mailotp running with this config? every instance needs the same file' });
    } else {
      try {
        readVapidKeys(webpush.vapidKeyFile);
        results.push({ name, status: 'ok', detail: 'VAPID key pair present' });
      } catch (err) {
        results.push({ name, status: 'fail', detail: reasonOf(err).replace(/^push\.webpush\.vapidKeyFile: /, ''), hint: 'restore the file from another instance (a new pair voids every browser subscription)' });
      }
    }
  }
  if (results.length === 0) results.push({ name: 'push', status: 'skip', detail: 'no push channel configured: requests are only listed on the device API' });
  return results;
}

/** The portal's /healthz answers 200 (it answers 503 while the store is unreachable). */
export async function checkPortal(config: Config, opts: { host?: string; timeoutMs: number }): Promise<CheckResult> {
  const host = reachableHost(config.portal.host, opts.host);
  const base = `${config.portal.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.portal.port}`;
  const name = `portal ${base}`;
  if (!config.portal.enabled) return { name: 'portal', status: 'skip', detail: 'portal.enabled is false' };
  try {
    const status = await httpStatus(`${base}/healthz`, 'GET', opts.timeoutMs);
    if (status === 200) return { name, status: 'ok', detail: 'GET /healthz: 200' };
    return { name, status: 'fail', detail: `GET /healthz: ${status}`, hint: status === 503 ? 'the portal cannot reach the store' : 'something else answers on this port?' };
  } catch (err) {
    return { name, status: 'fail', detail: reasonOf(err), hint: 'is mailotp running with this config? (systemctl status mailotp)' };
  }
}
