import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loggableVerb, maskForLog, parseCommand, SmtpCommandReader, type SmtpReadResult } from '../../../src/protocols/smtp/smtp-command-reader.js';

function drain(r: SmtpCommandReader): (string | 'TOO-LONG')[] {
  const out: (string | 'TOO-LONG')[] = [];
  for (let x: SmtpReadResult | null; (x = r.next()); ) out.push(x.type === 'line' ? x.line.toString('latin1') : 'TOO-LONG');
  return out;
}

describe('smtp command reader', () => {
  it('reads CRLF and bare-LF lines, byte by byte or all at once', () => {
    const input = 'EHLO a.example\r\nNOOP\nAUTH PLAIN\r\n\r\n';
    const whole = new SmtpCommandReader({ maxLineLength: 512 });
    whole.push(Buffer.from(input));
    assert.deepEqual(drain(whole), ['EHLO a.example', 'NOOP', 'AUTH PLAIN', '']);
    const bytes = new SmtpCommandReader({ maxLineLength: 512 });
    const got: (string | 'TOO-LONG')[] = [];
    for (const b of Buffer.from(input)) {
      bytes.push(Buffer.from([b]));
      got.push(...drain(bytes));
    }
    assert.deepEqual(got, ['EHLO a.example', 'NOOP', 'AUTH PLAIN', '']);
  });

  it('keeps a CR that is not followed by LF inside the line', () => {
    const r = new SmtpCommandReader({ maxLineLength: 512 });
    r.push(Buffer.from('NOOP a\rb\r\n'));
    assert.deepEqual(drain(r), ['NOOP a\rb']);
  });

  it('refuses a line past maxLineLength once, drops it without buffering it, and goes on', () => {
    const r = new SmtpCommandReader({ maxLineLength: 16 });
    r.push(Buffer.from('NOOP\r\n'));
    r.push(Buffer.from('X'.repeat(40)));
    assert.deepEqual(drain(r), ['NOOP']);
    assert.equal(r.buffered, 0, 'the head of the long line is not kept');
    for (let i = 0; i < 1000; i++) r.push(Buffer.from('Y'.repeat(1000)));
    assert.equal(r.buffered, 0, 'a flood without a line end costs no memory');
    assert.deepEqual(drain(r), []);
    r.push(Buffer.from('tail\r\nQUIT\r\n'));
    assert.deepEqual(drain(r), ['TOO-LONG', 'QUIT']);
  });

  it('refuses a long line that arrived whole, and accepts one of exactly the limit', () => {
    const r = new SmtpCommandReader({ maxLineLength: 8 });
    r.push(Buffer.from('123456789\r\n12345678\r\nNOOP\r\n'));
    assert.deepEqual(drain(r), ['TOO-LONG', '12345678', 'NOOP']);
    const split = new SmtpCommandReader({ maxLineLength: 8 });
    split.push(Buffer.from('12345678\r'));
    assert.deepEqual(drain(split), []);
    split.push(Buffer.from('\n'));
    assert.deepEqual(drain(split), ['12345678']);
  });

  it('judges lengths only when pulled: bytes pipelined behind AUTH are handed over whole', () => {
    const r = new SmtpCommandReader({ maxLineLength: 24 });
    const behind = `MAIL FROM:<${'a'.repeat(100)}@example.com>\r\nRCPT TO:<b@example.com>\r\n`;
    r.push(Buffer.from(`AUTH PLAIN AGEAYg==\r\n${behind}`));
    const first = r.next();
    assert.equal(first?.type === 'line' && first.line.toString(), 'AUTH PLAIN AGEAYg==');
    r.push(Buffer.from('DATA\r\n'));
    assert.equal(r.takeRemaining().toString(), `${behind}DATA\r\n`);
    assert.equal(r.buffered, 0);
  });

  it('skips a refused BDAT chunk, however it is split, binary bytes and CRLFs included', () => {
    const r = new SmtpCommandReader({ maxLineLength: 512 });
    r.push(Buffer.from('BDAT 10 LAST\r\nQUIT\r\n\0'));
    const bdat = r.next();
    assert.equal(bdat?.type === 'line' && bdat.line.toString(), 'BDAT 10 LAST');
    r.skip(10);
    r.push(Buffer.from('x\r\nNOOP\r\n'));
    assert.deepEqual(drain(r), ['NOOP']);
    const s = new SmtpCommandReader({ maxLineLength: 512 });
    s.push(Buffer.from('BDAT 100000\r\n'));
    assert.equal(s.next()?.type, 'line');
    s.skip(100_000);
    for (let i = 0; i < 100; i++) s.push(Buffer.alloc(1000, 0x0a));
    assert.equal(s.buffered, 0);
    s.push(Buffer.from('RSET\r\n'));
    assert.deepEqual(drain(s), ['RSET']);
  });

  it('clear() forgets plaintext pipelined behind STARTTLS', () => {
    const r = new SmtpCommandReader({ maxLineLength: 512 });
    r.push(Buffer.from('STARTTLS\r\nAUTH PLAIN x\r\n'));
    assert.equal(drain(r)[0], 'STARTTLS');
    r.clear();
    assert.deepEqual(drain(r), []);
    assert.equal(r.takeRemaining().length, 0);
  });

  it('grows and compacts its buffer without losing bytes', () => {
    const r = new SmtpCommandReader({ maxLineLength: 100_000 });
    const lines = Array.from({ length: 300 }, (_, i) => `NOOP ${'z'.repeat(i * 7)}`);
    const got: (string | 'TOO-LONG')[] = [];
    const all = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
    for (let i = 0; i < all.length; i += 977) {
      r.push(all.subarray(i, i + 977));
      got.push(...drain(r));
    }
    assert.deepEqual(got, lines);
  });
});

describe('smtp command parsing and log masking', () => {
  it('splits verb and argument, case-insensitively', () => {
    assert.deepEqual(parseCommand(Buffer.from('ehlo  client.example  ')), { verb: 'EHLO', arg: 'client.example' });
    assert.deepEqual(parseCommand(Buffer.from('QUIT')), { verb: 'QUIT', arg: '' });
    assert.deepEqual(parseCommand(Buffer.from('MAIL FROM:<a@b> SIZE=10')), { verb: 'MAIL', arg: 'FROM:<a@b> SIZE=10' });
  });

  it('gives no verb for lines that do not start with one', () => {
    for (const line of ['', ' NOOP', '12345', 'EH\0LO x', 'X'.repeat(17), 'NOOP\0']) {
      assert.equal(parseCommand(Buffer.from(line)).verb, '', JSON.stringify(line));
    }
  });

  it('never logs a SASL response, an initial response or an unknown line', () => {
    assert.equal(maskForLog({ sasl: true }), '***');
    assert.equal(maskForLog(parseCommand(Buffer.from('AUTH PLAIN AGFsaWNlAHNlY3JldA=='))), 'AUTH PLAIN ***');
    assert.equal(maskForLog(parseCommand(Buffer.from('AUTH LOGIN'))), 'AUTH LOGIN');
    assert.doesNotMatch(maskForLog(parseCommand(Buffer.from('SecretPassword'))), /Secret/);
    assert.equal(loggableVerb(parseCommand(Buffer.from('SecretPassword'))), '(unknown)');
    assert.equal(loggableVerb(parseCommand(Buffer.from('mail FROM:<a@b>'))), 'MAIL');
    assert.equal(maskForLog(parseCommand(Buffer.from('EHLO a\x1b[31mb'))), 'EHLO a\\x1b[31mb');
    assert.ok(maskForLog(parseCommand(Buffer.from(`EHLO ${'x'.repeat(500)}`))).length <= 203);
  });
});
