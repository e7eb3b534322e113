import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { silentLogger } from '../../../src/log/logger.js';
import { TlsContextProvider } from '../../../src/net/tls-context.js';
import { handleSmtpConnection } from '../../../src/protocols/smtp/smtp-session.js';
import { SmtpUpstream } from '../../../src/upstream/smtp-upstream.js';
import { splice } from '../../../src/upstream/splice.js';
import { testCerts } from '../../helpers/certs.js';
import { DEFAULT_LIMITS, recordingAuthorize, type Behaviour, SESSION_SUITE } from '../../helpers/session-harness.js';

/**
 * The whole SMTP path in one process, with an upstream that offers what the test Dovecot does not
 * (SMTPUTF8, DSN, a SIZE value, XCLIENT the way smtp-server does it): nodemailer -> session ->
 * SmtpUpstream -> splice -> smtp-server.
 */
interface Received {
  session: SMTPServerSession;
  raw: Buffer;
}

let upstream: SMTPServer;
let upstreamPort: number;
const received: Received[] = [];
let mailotp: net.Server;
let mailotpPort: number;
const sessions: Promise<void>[] = [];

before(async () => {
  upstream = new SMTPServer({
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    useXClient: true,
    hideDSN: false,
    size: 64 * 1024,
    logger: false,
    closeTimeout: 100,
    onAuth(auth, _session, cb) {
      if (auth.username === 'ünï' && auth.password === 'pässwörd') cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        // The session object lives on and changes with the next transaction: keep a copy.
        received.push({ session: { ...session, envelope: structuredClone(session.envelope) }, raw: Buffer.concat(chunks) });
        cb(stream.sizeExceeded ? Object.assign(new Error('too big'), { responseCode: 552 }) : null);
      });
    },
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', () => resolve()));
  upstreamPort = (upstream.server.address() as net.AddressInfo).port;

  const up = new SmtpUpstream({ host: '127.0.0.1', port: upstreamPort, tls: 'none', verify: true, connectTimeout: 2000 }, silentLogger(), { heloName: 'mailotp.test' });
  await up.start();
  // Two-factor off for this user: whatever the upstream says of the password is the answer.
  const notRequired: Behaviour = (_attempt, v) => {
    if (v.kind === 'ok') return { kind: 'approved', session: v.session, reason: 'not-required' };
    return v.kind === 'bad-password' ? { kind: 'bad-password', reply: v.reply } : { kind: 'unavailable', reason: v.reason };
  };
  const certs = testCerts();
  mailotp = net.createServer((s) => {
    sessions.push(
      handleSmtpConnection(s, 'implicit', { ip: '192.0.2.44', port: 4444 }, {
        authorize: recordingAuthorize([], notRequired),
        upstreamLogin: (user, password, client, signal) => up.login(user, password, client, signal),
        upstreamExtensions: () => up.extensions(),
        splice: (a, b, o) => splice(a, b, o),
        tls: new TlsContextProvider({ cert: certs.certFile, key: certs.keyFile }),
        limits: DEFAULT_LIMITS,
        hostname: 'mx.test',
        logger: silentLogger(),
      }),
    );
  });
  await new Promise<void>((resolve) => mailotp.listen(0, '127.0.0.1', resolve));
  mailotpPort = (mailotp.address() as net.AddressInfo).port;
});

after(async () => {
  await new Promise((resolve) => mailotp.close(resolve));
  await Promise.all(sessions);
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

const transport = (pass = 'pässwörd'): nodemailer.Transporter<SMTPTransport.SentMessageInfo, SMTPTransport.Options> =>
  nodemailer.createTransport({
    host: '127.0.0.1',
    port: mailotpPort,
    secure: true,
    auth: { user: 'ünï', pass },
    tls: { ca: [testCerts().ca], servername: 'localhost' },
    name: 'client.example',
  } as SMTPTransport.Options);

describe('smtp: session, upstream and splice together', SESSION_SUITE, () => {
  it('mirrors the upstream extensions, forwards the client with XCLIENT and relays SMTPUTF8 and DSN', async () => {
    const t = transport();
    const mail: SMTPTransport.MailOptions = {
      envelope: { from: 'ünï@exämple.com', to: ['tö@exämple.org', 'plain@example.org'] },
      raw: 'Subject: ✓\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÜnïcödé\r\n.\r\n',
      dsn: { envid: 'env-1', ret: 'HDRS', notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;x@example.org' },
    };
    const info = await t.sendMail(mail);
    t.close();
    // smtp-server hides ENHANCEDSTATUSCODES by default, so mailotp does not claim it either.
    assert.deepEqual((info as { ehlo?: string[] }).ehlo, ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'DSN', 'SIZE 65536', 'AUTH PLAIN LOGIN']);
    const got = received.at(-1)!;
    assert.equal(got.session.envelope.mailFrom && got.session.envelope.mailFrom.address, 'ünï@exämple.com');
    assert.deepEqual(
      got.session.envelope.rcptTo.map((r) => r.address),
      ['tö@exämple.org', 'plain@example.org'],
    );
    assert.equal(got.session.envelope.smtpUtf8, true);
    assert.deepEqual([got.session.envelope.dsn?.envid, got.session.envelope.dsn?.ret], ['env-1', 'HDRS']);
    assert.equal(got.raw.toString(), 'Subject: ✓\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÜnïcödé\r\n.\r\n');
    assert.equal(got.session.remoteAddress, '192.0.2.44', 'XCLIENT ADDR');
    assert.equal(got.session.hostNameAppearsAs, 'client.example', 'EHLO after XCLIENT carries the client name');
    assert.equal(got.session.user, 'ünï', 'the spliced session is the authenticated one');
  });

  it("passes on the upstream's own refusals after AUTH (SIZE) and before (password)", async () => {
    const big = transport();
    await assert.rejects(big.sendMail({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, raw: `Subject: big\r\n\r\n${'x'.repeat(70 * 1024)}\r\n` }), (err: { responseCode?: number }) => err.responseCode === 552);
    big.close();
    const wrong = transport('nope');
    await assert.rejects(wrong.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x' }), (err: { response?: string }) => /^535 5\.7\.8 /.test(err.response ?? ''));
    wrong.close();
  });
});
