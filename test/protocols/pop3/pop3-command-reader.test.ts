import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskForLog, parsePop3Line, Pop3CommandReader, type Pop3ReadResult } from '../../../src/protocols/pop3/pop3-command-reader.js';

function drain(r: Pop3CommandReader): Pop3ReadResult[] {
  const out: Pop3ReadResult[] = [];
  for (let x = r.next(); x; x = r.next()) out.push(x);
  return out;
}

function lines(results: Pop3ReadResult[]): { keyword: string; rest: string | null }[] {
  return results.map((x) => {
    if (x.type !== 'line') throw new Error(`expected a line, got ${JSON.stringify(x)}`);
    return { keyword: x.command.keyword, rest: x.command.rest?.toString('latin1') ?? null };
  });
}

describe('pop3 command reader', () => {
  it('splits keyword (upper-cased) from the rest, which keeps its spaces', () => {
    const r = new Pop3CommandReader(8192);
    r.push(Buffer.from('user alice\r\nPASS  pass word \r\nCAPA\r\nauth PLAIN =\r\n'));
    assert.deepEqual(lines(drain(r)), [
      { keyword: 'USER', rest: 'alice' },
      { keyword: 'PASS', rest: ' pass word ' },
      { keyword: 'CAPA', rest: null },
      { keyword: 'AUTH', rest: 'PLAIN =' },
    ]);
  });

  it('takes a bare LF as a line end and keeps a lone CR inside the line', () => {
    const r = new Pop3CommandReader(8192);
    r.push(Buffer.from('USER a\nPASS b\rc\r\n\r\n'));
    assert.deepEqual(lines(drain(r)), [
      { keyword: 'USER', rest: 'a' },
      { keyword: 'PASS', rest: 'b\rc' },
      { keyword: '', rest: null },
    ]);
  });

  it('keeps NUL and 8-bit bytes as they are; the session decides what to refuse', () => {
    const r = new Pop3CommandReader(8192);
    r.push(Buffer.from([0x55, 0x53, 0x45, 0x52, 0x20, 0x61, 0x00, 0x62, 0xff, 0x0d, 0x0a]));
    const [x] = drain(r);
    assert.equal(x?.type, 'line');
    if (x?.type === 'line') assert.deepEqual([...(x.command.rest ?? [])], [0x61, 0x00, 0x62, 0xff]);
  });

  it('assembles lines split across chunks, byte by byte', () => {
    const r = new Pop3CommandReader(8192);
    const got: Pop3ReadResult[] = [];
    for (const b of Buffer.from('USER alice\r\nPASS secret\r\n')) {
      r.push(Buffer.from([b]));
      got.push(...drain(r));
    }
    assert.deepEqual(lines(got), [
      { keyword: 'USER', rest: 'alice' },
      { keyword: 'PASS', rest: 'secret' },
    ]);
  });

  it('leaves bytes it was not asked for untouched, for the upstream', () => {
    const r = new Pop3CommandReader(8192);
    r.push(Buffer.from('PASS x\r\nSTAT\r\nRETR 1\r\npartial'));
    assert.equal(lines([r.next()!])[0]?.keyword, 'PASS');
    assert.equal(r.buffered, 'STAT\r\nRETR 1\r\npartial'.length);
    assert.equal(r.takeRemaining().toString(), 'STAT\r\nRETR 1\r\npartial');
    assert.equal(r.buffered, 0);
    assert.equal(r.next(), null);
  });

  it('accepts a line of exactly the maximum and refuses one byte more', () => {
    const ok = new Pop3CommandReader(600);
    ok.push(Buffer.from(`AUTH ${'A'.repeat(595)}\r\n`));
    assert.equal(ok.next()?.type, 'line');
    const tooLong = new Pop3CommandReader(600);
    tooLong.push(Buffer.from(`AUTH ${'A'.repeat(596)}\r\n`));
    assert.deepEqual(tooLong.next(), { type: 'error', kind: 'line-too-long' });
  });

  it('refuses a 100 KB line without a line end as soon as it is past the limit, then stays dead', () => {
    const r = new Pop3CommandReader(8192);
    let result: Pop3ReadResult | null = null;
    for (let i = 0; i < 100 && !result; i++) {
      r.push(Buffer.alloc(1024, 0x41));
      result = r.next();
    }
    assert.deepEqual(result, { type: 'error', kind: 'line-too-long' });
    r.push(Buffer.from('CAPA\r\n'));
    assert.equal(r.next(), null, 'nothing is read after the error');
    assert.equal(r.buffered, 0, 'and nothing is kept');
  });

  it('refuses a 100 KB line that arrives at once with its line end', () => {
    const r = new Pop3CommandReader(8192);
    r.push(Buffer.concat([Buffer.alloc(100 * 1024, 0x41), Buffer.from('\r\nCAPA\r\n')]));
    assert.deepEqual(r.next(), { type: 'error', kind: 'line-too-long' });
    assert.equal(r.next(), null);
  });

  it('clear() forgets plaintext sent ahead (STLS)', () => {
    const r = new Pop3CommandReader(8192);
    r.push(Buffer.from('CAPA\r\nUSER injected\r\n'));
    r.clear();
    assert.equal(r.next(), null);
    r.push(Buffer.from('CAPA\r\n'));
    assert.deepEqual(lines([r.next()!]), [{ keyword: 'CAPA', rest: null }]);
  });
});

describe('pop3 command masking for logs', () => {
  const mask = (line: string, sasl = false) => maskForLog(parsePop3Line(Buffer.from(line, 'latin1')), sasl);

  it('never shows a password or a SASL response', () => {
    assert.equal(mask('PASS secret words'), 'PASS ***');
    assert.equal(mask('AUTH PLAIN AGFsaWNlAHNlY3JldA=='), 'AUTH PLAIN ***');
    assert.equal(mask('AUTH LOGIN'), 'AUTH LOGIN');
    assert.equal(mask('AGFsaWNlAHNlY3JldA==', true), '***');
    assert.equal(mask('APOP alice 0123456789abcdef'), 'APOP ***');
  });

  it('shows a line that starts with no known keyword by its length only (a SASL response or password out of step)', () => {
    // Found by the fuzz properties: the keyword of such a line, i.e. the secret, was logged.
    assert.equal(mask('AGFsaWNlAHNlY3JldA=='), '(unknown command, 20 bytes)');
    assert.equal(mask('correct horse battery'), '(unknown command, 21 bytes)');
    assert.equal(mask('capa'), 'CAPA');
  });

  it('shows USER names with control characters escaped, and bounds the length', () => {
    assert.equal(mask('USER al\x00ice\x1b'), 'USER al\\x00ice\\x1b');
    assert.ok(mask(`USER ${'x'.repeat(1000)}`).length <= 203);
  });
});
