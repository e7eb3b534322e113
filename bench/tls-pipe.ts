// The bare reference: a 10-line Node TLS pipe to a plain upstream, no parsing, no login handling.
// Usage: node dist/bench/tls-pipe.js LISTEN_PORT UPSTREAM_PORT CERT_FILE KEY_FILE
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
const [port, upstreamPort, cert, key] = process.argv.slice(2) as [string, string, string, string];
tls.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (client) => {
  const upstream = net.connect(Number(upstreamPort), '127.0.0.1');
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy()).on('close', () => upstream.destroy());
  upstream.on('error', () => client.destroy()).on('close', () => client.destroy());
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
