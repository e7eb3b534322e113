import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ImapCommandReader,
  loggableName,
  maskForLog,
  type ImapArg,
  type ImapCommand,
  type ImapReadError,
  type ImapReadResult,
} from '../../../src/protocols/imap/imap-command-reader.js';

function reader(opts: Partial<{ maxLineLength: number; maxLiteralSize: number }> = {}) {
  const continuations: string[] = [];
  const r = new ImapCommandReader({
    maxLineLength: opts.maxLineLength ?? 8192,
    maxLiteralSize: opts.maxLiteralSize ?? 8192,
    onContinuationNeeded: (tag) => continuations.push(tag),
  });
  return { r, continuations };
}

function drain(r: ImapCommandReader): ImapReadResult[] {
  const out: ImapReadResult[] = [];
  for (let x = r.next(); x; x = r.next()) out.push(x);
  return out;
}

function feed(text: string | Buffer, opts?: Parameters<typeof reader>[0]) {
  const { r, continuations } = reader(opts);
  r.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  return { results: drain(r), continuations, r };
}

function command(x: ImapReadResult | null | undefined): ImapCommand {
  if (x?.type !== 'command') throw new Error(`expected a command, got ${JSON.stringify(x)}`);
  return x.command;
}

function error(x: ImapReadResult | null | undefined): ImapReadError {
  if (x?.type !== 'error') throw new Error(`expected an error, got ${JSON.stringify(x)}`);
  return x.error;
}

/** Arguments as plain values: atoms as strings, strings as latin1 text, lists as arrays. */
function plain(args: ImapArg[]): unknown[] {
  return args.map((a) => {
    if (a.type === 'list') return plain(a.items);
    if (a.type === 'atom') return a.value;
    return `${a.type === 'literal' ? `{${a.sync ? '' : '+'}}` : ''}${a.value.toString('latin1')}`;
  });
}

describe('imap command reader: grammar', () => {
  it('reads tag, upper-cased name, atoms, quoted strings, lists', () => {
    const { results } = feed('A1 login alice "p\\"a\\\\ss"\r\nx2 ID ("name" "Thunder bird" "os" NIL)\r\n');
    const login = command(results[0]);
    assert.equal(login.tag, 'A1');
    assert.equal(login.name, 'LOGIN');
    assert.deepEqual(plain(login.args), ['alice', 'p"a\\ss']);
    assert.equal(login.raw.toString(), 'A1 login alice "p\\"a\\\\ss"\r\n');
    assert.deepEqual(plain(command(results[1]).args), [['name', 'Thunder bird', 'os', 'NIL']]);
  });

  it('tolerates bare LF and skips empty lines', () => {
    const { results } = feed('\r\n\n\r\na NOOP\nb NOOP\r\n');
    assert.deepEqual(
      results.map((x) => command(x).tag),
      ['a', 'b'],
    );
    // Skipped empty lines are no part of the command.
    assert.equal(command(results[0]).raw.toString(), 'a NOOP\n');
  });

  it('waits for the line end, including a lone CR', () => {
    const { r } = reader();
    r.push(Buffer.from('a NOOP\r'));
    assert.equal(r.next(), null);
    r.push(Buffer.from('\n'));
    assert.equal(command(r.next()).name, 'NOOP');
  });

  it('reports broken syntax and resynchronises at the next line', () => {
    const { results } = feed(
      [
        'a LOGIN "unterminated',
        'b LOGIN "bad \\n escape"',
        'c LOGIN a"b c',
        'd LOGIN (x',
        'e LOGIN x)',
        'f LOGIN x(y)',
        ' NOOP',
        '+x NOOP',
        'g',
        'h LOGIN "a"b',
        'ok NOOP',
        '',
      ].join('\r\n'),
    );
    const errors = results.slice(0, -1).map((x) => error(x));
    assert.deepEqual(errors, [
      { kind: 'syntax', tag: 'a', message: 'Unterminated quoted string' },
      { kind: 'syntax', tag: 'b', message: 'Invalid escape in quoted string' },
      { kind: 'syntax', tag: 'c', message: 'Invalid character in atom' },
      { kind: 'syntax', tag: 'd', message: 'Unterminated list' },
      { kind: 'syntax', tag: 'e', message: 'Unexpected ")"' },
      { kind: 'syntax', tag: 'f', message: 'Missing space between arguments' },
      { kind: 'syntax', tag: undefined, message: 'Missing or invalid tag' },
      { kind: 'syntax', tag: undefined, message: 'Missing or invalid tag' },
      { kind: 'syntax', tag: 'g', message: 'Missing command' },
      { kind: 'syntax', tag: 'h', message: 'Missing space between arguments' },
    ]);
    assert.equal(command(results.at(-1)).tag, 'ok');
  });

  it('refuses NUL and control characters outside literals, keeps them inside', () => {
    const { results } = feed('a LOGIN "x\0y" z\r\nb LOGIN x\0y z\r\nc LOGIN {3+}\r\nx\0y z\r\n');
    assert.equal(error(results[0]).kind, 'syntax');
    assert.equal(error(results[1]).kind, 'syntax');
    const c = command(results[2]);
    const lit = c.args[0];
    assert.ok(lit?.type === 'literal');
    assert.deepEqual([...lit.value], [0x78, 0, 0x79]);
  });
});

describe('imap command reader: literals', () => {
  it('asks for continuation on {n} only, and {n+}/{n-} interleave with it', () => {
    const { results, continuations } = feed('a LOGIN {5+}\r\nalice {6}\r\nsecret\r\nb LOGIN {3-}\r\nbob {0}\r\n\r\n');
    assert.deepEqual(continuations, ['a', 'b']);
    const a = command(results[0]);
    assert.deepEqual(plain(a.args), ['{+}alice', '{}secret']);
    assert.deepEqual(plain(command(results[1]).args), ['{+}bob', '{}']);
  });

  it('literals are binary-safe and {0} works', () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const { results } = feed(Buffer.concat([Buffer.from('a X {256+}\r\n'), bytes, Buffer.from(' {0+}\r\n ("k" {0+}\r\n)\r\n')]));
    const cmd = command(results[0]);
    const [lit, empty, list] = cmd.args;
    assert.ok(lit?.type === 'literal' && empty?.type === 'literal' && list?.type === 'list');
    assert.ok(lit.value.equals(bytes));
    assert.equal(empty.value.length, 0);
    assert.deepEqual(plain(list.items), ['k', '{+}']);
  });

  it('a literal split across 1-byte chunks', () => {
    const { r, continuations } = reader();
    const text = 'a LOGIN {5}\r\nalice {10+}\r\nse\r\ncr\net!\r\nb NOOP\r\n';
    const got: ImapReadResult[] = [];
    for (const byte of Buffer.from(text)) {
      r.push(Buffer.from([byte]));
      for (let x = r.next(); x; x = r.next()) got.push(x);
    }
    assert.deepEqual(continuations, ['a']);
    assert.deepEqual(plain(command(got[0]).args), ['{}alice', '{+}se\r\ncr\net!']);
    assert.equal(command(got[0]).raw.toString(), 'a LOGIN {5}\r\nalice {10+}\r\nse\r\ncr\net!\r\n');
    assert.equal(command(got[1]).name, 'NOOP');
    assert.equal(got.length, 2);
  });

  it('refuses bad literal specifications', () => {
    const specs = ['{-5}', '{abc}', '{}', '{+}', '{99999999999}', '{4294967296}', '{5', '{5}x', '{5}{6}', '{ 5}'];
    const { results } = feed(`${specs.map((s, i) => `t${i} LOGIN ${s}`).join('\r\n')}\r\nok NOOP\r\n`);
    assert.equal(results.length, specs.length + 1);
    for (const [i, x] of results.slice(0, -1).entries()) {
      const e = error(x);
      assert.equal(e.kind, 'syntax', specs[i]);
      assert.match(e.kind === 'syntax' ? e.message : '', /literal/i, specs[i]);
    }
    assert.equal(command(results.at(-1)).tag, 'ok');
  });

  it('a huge synchronising literal is refused without being read; the reader carries on', () => {
    const { results, continuations } = feed('a LOGIN {1048576}\r\nb NOOP\r\n');
    assert.deepEqual(error(results[0]), { kind: 'literal-too-large', tag: 'a', fatal: false });
    assert.equal(command(results[1]).tag, 'b');
    assert.deepEqual(continuations, []);
  });

  it('a huge non-synchronising literal is fatal', () => {
    const { results } = feed('a LOGIN {1048576+}\r\nxxxx\r\nb NOOP\r\n');
    assert.deepEqual(results.map((x) => error(x)), [{ kind: 'literal-too-large', tag: 'a', fatal: true }]);
  });

  it('bounds the whole command, not only each literal', () => {
    const { r } = reader({ maxLineLength: 512, maxLiteralSize: 100 });
    const part = `{100+}\r\n${'x'.repeat(100)} `;
    r.push(Buffer.from(`a LOGIN ${part.repeat(8)}\r\n`));
    assert.deepEqual(drain(r).map((x) => error(x)), [{ kind: 'literal-too-large', tag: 'a', fatal: true }]);
  });
});

describe('imap command reader: limits and hand-over', () => {
  it('a 100 KB line is line-too-long, with or without its line end', () => {
    for (const end of ['', '\r\n']) {
      const { results, r } = feed(`a LOGIN ${'x'.repeat(100 * 1024)}${end}`);
      assert.deepEqual(results.map((x) => error(x)), [{ kind: 'line-too-long' }]);
      r.push(Buffer.from('b NOOP\r\n'));
      assert.equal(r.next(), null, 'dead after a fatal error');
    }
  });

  it('a line of exactly maxLineLength is fine; one more byte is not', () => {
    const ok = `a NOOP ${'x'.repeat(512 - 7)}`;
    assert.equal(command(feed(`${ok}\r\n`, { maxLineLength: 512 }).results[0]).name, 'NOOP');
    assert.equal(error(feed(`${ok}x\r\n`, { maxLineLength: 512 }).results[0]).kind, 'line-too-long');
  });

  it('takeRemaining returns pipelined bytes after LOGIN intact', () => {
    const tail = 'b SELECT INBOX\r\nc APPEND x {3}\r\nab\0\r\nd IDLE\r\npartial';
    const { r } = reader();
    r.push(Buffer.from(`a LOGIN alice secret\r\n${tail.slice(0, 10)}`));
    assert.equal(command(r.next()).name, 'LOGIN');
    r.push(Buffer.from(tail.slice(10)));
    assert.equal(r.takeRemaining().toString('latin1'), tail);
    assert.equal(r.buffered, 0);
    assert.equal(r.next(), null);
  });

  it('keeps memory bounded while buffering (compaction)', () => {
    const { r } = reader();
    for (let i = 0; i < 5000; i++) {
      r.push(Buffer.from(`t${i} NOOP\r\n`));
      assert.equal(command(r.next()).tag, `t${i}`);
    }
    assert.equal(r.buffered, 0);
  });

  it('continuation-mode lines are single and bounded', () => {
    const { r } = reader({ maxLineLength: 512 });
    r.push(Buffer.from('AGFsaWNl\r\n*\nrest'));
    const a = r.nextLine();
    assert.ok(a?.type === 'line');
    assert.equal(a.line.raw.toString(), 'AGFsaWNl');
    const b = r.nextLine();
    assert.ok(b?.type === 'line');
    assert.equal(b.line.raw.toString(), '*');
    assert.equal(r.nextLine(), null);
    r.push(Buffer.from('x'.repeat(600)));
    assert.deepEqual(r.nextLine(), { type: 'error', error: { kind: 'line-too-long' } });
  });

  it('clear() forgets everything (STARTTLS)', () => {
    const { r } = reader();
    r.push(Buffer.from('a LOGIN x y\r\nb NOOP'));
    r.clear();
    r.push(Buffer.from('c NOOP\r\n'));
    assert.equal(command(r.next()).tag, 'c');
  });
});

describe('maskForLog', () => {
  const one = (text: string) => command(feed(text).results[0]);

  it('masks LOGIN passwords, AUTHENTICATE responses and continuation lines', () => {
    assert.equal(maskForLog(one('a LOGIN alice "hunter2"\r\n')), 'a LOGIN alice ***');
    assert.equal(maskForLog(one('a LOGIN {5+}\r\nalice {7+}\r\nhunter2\r\n')), 'a LOGIN {5+}"alice" ***');
    assert.equal(maskForLog(one('a AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=\r\n')), 'a AUTHENTICATE PLAIN ***');
    assert.equal(maskForLog({ continuation: true, raw: Buffer.from('AGFsaWNlAGh1bnRlcjI=') }), '***');
  });

  it('masks the arguments of commands it does not know, shows ID', () => {
    assert.equal(maskForLog(one('a LOGON alice hunter2\r\n')), '(unknown command, 23 bytes)');
    // A password with a space, sent on a line of its own, reads as tag and command: neither is shown.
    assert.equal(maskForLog(one('correct horse\r\n')), '(unknown command, 15 bytes)');
    assert.equal(loggableName('HORSE'), '(unknown)');
    assert.equal(loggableName('LOGIN'), 'LOGIN');
    assert.equal(maskForLog(one('a ID ("name" "x\\"y")\r\n')), 'a ID ("name" "x"y")');
    assert.equal(maskForLog(one('a ID ({2+}\r\n\x01\x02)\r\n')), 'a ID ({2+}"\\x01\\x02")');
  });
});
