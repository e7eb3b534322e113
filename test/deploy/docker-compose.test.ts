import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load-config.js';
import { CHECK_GROUPS } from '../../src/doctor/doctor.js';
import { testCerts } from '../helpers/certs.js';
import { ROOT } from '../e2e/harness.js';
import { stopChild, waitForStart, writeMinimalConfig } from './deploy-kit.js';

// No Docker engine runs here: these tests check what can be checked without one (the compose
// file's structure against the repository, the container's config against mailotp's own schema,
// and the image's file list by running mailotp from exactly those files).

interface Service {
  build?: string;
  image?: string;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

const COMPOSE_TEXT = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8');
const CONTAINER_CONFIG = '/etc/mailotp/mailotp.yaml';

/** The file with the Sentinel variant uncommented, as the comment in it tells the admin to do. */
function sentinelVariant(): string {
  let inside = false;
  return COMPOSE_TEXT.split('\n')
    .map((line) => {
      if (line.includes('# --- Redis Sentinel variant')) inside = true;
      if (line.includes('# --- end of the Sentinel variant')) inside = false;
      if (line.includes('# --- ')) return '';
      if (inside || line.includes('# Sentinel variant')) return line.replace(/^( *)# ?/, '$1').replace(/ +# Sentinel variant$/, '');
      return line;
    })
    .join('\n');
}

function checkStructure(compose: Compose): void {
  for (const [name, service] of Object.entries(compose.services)) {
    assert.ok(service.healthcheck?.test.length, `${name} has a healthcheck`);
    for (const v of service.volumes ?? []) {
      const source = v.split(':')[0]!;
      if (source.startsWith('.')) assert.ok(existsSync(join(ROOT, source)), `${name}: bind-mount source ${source} exists in the repository`);
      else assert.ok(source in compose.volumes, `${name}: named volume ${source} is declared`);
    }
    for (const [dep, how] of Object.entries(service.depends_on ?? {})) {
      assert.ok(compose.services[dep], `${name} depends on a service that exists: ${dep}`);
      assert.equal(how.condition, 'service_healthy');
    }
  }
}

describe('docker-compose.yml', () => {
  const compose = parseYaml(COMPOSE_TEXT) as Compose;
  const mailotp = compose.services.mailotp!;

  it('mailotp (built from the Dockerfile) and Redis, with healthchecks, volumes that exist, start after a healthy Redis', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['mailotp', 'redis']);
    assert.equal(mailotp.build, '.');
    assert.ok(existsSync(join(ROOT, 'Dockerfile')));
    checkStructure(compose);
    assert.deepEqual(mailotp.depends_on, { redis: { condition: 'service_healthy' } });
    // The image's entrypoint is `node /app/bin/mailotp`; command and healthcheck name the mounted config.
    assert.deepEqual(mailotp.command, ['start', '--config', CONTAINER_CONFIG]);
    assert.ok(mailotp.volumes!.includes(`./deploy/docker/mailotp.yaml:${CONTAINER_CONFIG}:ro`));
    const health = mailotp.healthcheck!.test;
    assert.deepEqual(health.slice(0, 6), ['CMD', 'node', '/app/bin/mailotp', 'doctor', '--config', CONTAINER_CONFIG]);
    const only = health[health.indexOf('--only') + 1]!.split(',');
    for (const g of only) assert.ok((CHECK_GROUPS as readonly string[]).includes(g), `doctor --only group ${g}`);
  });

  it("the container's config passes mailotp's schema and matches the compose file: ports, Redis host, state in the volume", () => {
    const config = loadConfig(join(ROOT, 'deploy', 'docker', 'mailotp.yaml'));
    const published = new Map(mailotp.ports!.map((p) => p.split(':').map(Number) as [number, number]));
    const wanted: Record<number, string> = { 993: 'imap implicit', 143: 'imap starttls', 995: 'pop3 implicit', 110: 'pop3 starttls', 465: 'smtp implicit', 587: 'smtp starttls' };
    for (const [host, what] of Object.entries(wanted)) {
      const inside = published.get(Number(host));
      const listener = config.listeners.find((l) => l.port === inside);
      assert.equal(listener && `${listener.protocol} ${listener.tls}`, what, `host port ${host} reaches the ${what} listener`);
    }
    assert.equal(published.get(8443), config.portal.port);
    assert.equal(config.listeners.length, published.size - 1, 'every listener is published');

    assert.equal(config.store.driver, 'redis');
    assert.ok(compose.services[new URL(config.store.url!).hostname], 'store.url names the compose Redis service');
    const dataMount = mailotp.volumes!.find((v) => v.startsWith('mailotp-data:'))!.split(':')[1]!;
    assert.match(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'), new RegExp(`VOLUME \\[.*"${dataMount}"`));
    for (const file of [config.portal.secretKeyFile, config.push.webpush!.vapidKeyFile]) assert.ok(file.startsWith(`${dataMount}/`), `${file} is kept in the volume`);
    const tlsMount = mailotp.volumes!.find((v) => v.startsWith('./certs:'))!.split(':')[1]!;
    assert.equal(dirname(config.tls!.cert), tlsMount);
    assert.equal(dirname(config.tls!.key), tlsMount);
  });

  it('the commented Sentinel variant, uncommented, adds a replica and three sentinels with the same checks', () => {
    const variant = parseYaml(sentinelVariant()) as Compose;
    assert.deepEqual(Object.keys(variant.services).sort(), ['mailotp', 'redis', 'redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3']);
    checkStructure(variant);
    for (const s of ['sentinel-1', 'sentinel-2', 'sentinel-3']) {
      const script = variant.services[s]!.command!.join(' ');
      assert.match(script, /sentinel monitor mailotp redis 6379 2/);
      assert.match(script, /exec redis-sentinel/);
    }
    assert.match(variant.services['redis-replica']!.command!.join(' '), /--replicaof redis 6379/);
    // The mailotp side: the config names the same master and sentinels (keys of the Sentinel work).
    const yamlText = readFileSync(join(ROOT, 'deploy', 'docker', 'mailotp.yaml'), 'utf8');
    // Uncommented as its comment says (sentinels and sentinelName instead of url), it passes the schema.
    const lines = yamlText.split('\n').filter((l) => !/^ {2}url: /.test(l));
    const sentinelConfig = lines.map((l) => l.replace(/^ {2}# (sentinels|sentinelName): /, '  $1: ')).join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'mailotp-sentinel-variant-'));
    try {
      writeFileSync(join(dir, 'mailotp.yaml'), sentinelConfig);
      const config = loadConfig(join(dir, 'mailotp.yaml'));
      assert.equal(config.store.url, undefined);
      assert.equal(config.store.sentinelName, 'mailotp', 'the name the sentinels monitor');
      assert.deepEqual(config.store.sentinels, ['sentinel-1:26379', 'sentinel-2:26379', 'sentinel-3:26379']);
      for (const s of config.store.sentinels ?? []) assert.ok(variant.services[s.split(':')[0]!], `store.sentinels names a compose service: ${s}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the image's runtime file list (the Dockerfile's COPY --from=build lines) is enough to serve the portal and the app", async () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const copies = [...dockerfile.matchAll(/^COPY --from=build \/app\/(\S+) \.\/(\S*)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    assert.ok(copies.length >= 4, dockerfile);
    const app = mkdtempSync(join(tmpdir(), 'mailotp-image-'));
    const certs = testCerts();
    const child = { proc: null as ReturnType<typeof spawn> | null };
    try {
      for (const [from, to] of copies) {
        const target = join(app, to === '' ? from : to);
        // node_modules is linked, not copied: its contents are npm's business, not the file list's.
        if (from === 'node_modules') symlinkSync(join(ROOT, 'node_modules'), target);
        else cpSync(join(ROOT, from), target, { recursive: true });
      }
      const config = writeMinimalConfig(app, { state: app, cert: certs.certFile, key: certs.keyFile });
      const proc = spawn(process.execPath, [join(app, 'bin', 'mailotp'), 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], cwd: app });
      child.proc = proc;
      const port = (await waitForStart(proc)).portal.port;
      const get = (path: string) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          https
            .get({ host: '127.0.0.1', port, path, ca: certs.ca, servername: 'localhost' }, (res) => {
              let body = '';
              res.on('data', (c: Buffer) => (body += c.toString()));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            })
            .on('error', reject);
        });
      const page = await get('/');
      assert.equal(page.status, 200);
      assert.match(page.body, /User name/);
      const css = await get('/static/portal.css');
      assert.equal(css.status, 200, 'the pages\' static files are in the image');
      const appPage = await get('/app/');
      assert.equal(appPage.status, 200, 'the web authenticator app is in the image');
      assert.match(appPage.body, /manifest\.webmanifest/);
    } finally {
      await stopChild(child.proc);
      rmSync(app, { recursive: true, force: true });
    }
  });
});
