// nginx mail proxy's auth_http helper for the benchmark: every login may go on to the plain IMAP
// upstream, which then checks the password itself (as mailotp's upstream does).
// Usage: node dist/bench/auth-http.js LISTEN_PORT UPSTREAM_PORT
import http from 'node:http';

const [port, upstreamPort] = process.argv.slice(2) as [string, string];
http
  .createServer((_req, res) => {
    res.writeHead(200, { 'Auth-Status': 'OK', 'Auth-Server': '127.0.0.1', 'Auth-Port': upstreamPort });
    res.end();
  })
  .listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\n'));
