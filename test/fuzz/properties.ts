import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProxyHeaderParser, V1_MAX_LENGTH, parseProxyHeader, type ProxyParseResult } from '../../src/net/proxy-protocol.js';
import { ImapCommandReader, maskForLog as maskImap, type ImapArg } from '../../src/protocols/imap/imap-command-reader.js';
import { Pop3CommandReader, maskForLog as maskPop3, parsePop3Line } from '../../src/protocols/pop3/pop3-command-reader.js';
import { checkCredentials, decodeBase64, decodeInitialResponse, parsePlain } from '../../src/protocols/shared/sasl.js';
import { SmtpCommandReader, maskForLog as maskSmtp, parseCommand } from '../../src/protocols/smtp/smtp-command-reader.js';
import { chunked, cuts, imapStream, lineStream, noiseBytes, proxyCase, proxyNoise, proxyV1, proxyV2 } from './inputs.js';

/**
 * Properties of everything that reads bytes from a client or a balancer before anyone is
 * authenticated. Shared by the short run in the test suite and the long one (`npm run fuzz`).
 */
export interface FuzzProperty {
  name: string;
  property: fc.IProperty<never> | fc.IProperty<unknown>;
}

const MAX_LINE = 120;
const MAX_LITERAL = 64;
/** What a reader may hold after it said "need more bytes": one line, plus LOGIN's two literals for IMAP. */
const IMAP_BOUND = MAX_LINE + 2 * MAX_LITERAL + 2;
const LINE_BOUND = MAX_LINE + 1;

/** Everything the IMAP reader says, in order, for a stream delivered in these chunks. */
function readImap(chunks: Buffer[]): unknown[] {
  const out: unknown[] = [];
  const reader = new ImapCommandReader({ maxLineLength: MAX_LINE, maxLiteralSize: MAX_LITERAL, onContinuationNeeded: (tag) => out.push({ continuation: tag }) });
  for (const c of chunks) {
    reader.push(c);
    for (let r = reader.next(); r !== null; r = reader.next()) out.push(r);
    assert.ok(reader.buffered <= IMAP_BOUND, `IMAP reader holds ${reader.buffered} bytes`);
  }
  return out;
}

function readPop3(chunks: Buffer[]): unknown[] {
  const out: unknown[] = [];
  const reader = new Pop3CommandReader(MAX_LINE);
  for (const c of chunks) {
    reader.push(c);
    for (let r = reader.next(); r !== null; r = reader.next()) out.push(r);
    assert.ok(reader.buffered <= LINE_BOUND, `POP3 reader holds ${reader.buffered} bytes`);
  }
  return out;
}

function readSmtp(chunks: Buffer[], skip = 0): unknown[] {
  const out: unknown[] = [];
  const reader = new SmtpCommandReader({ maxLineLength: MAX_LINE });
  if (skip > 0) reader.skip(skip);
  for (const c of chunks) {
    reader.push(c);
    for (let r = reader.next(); r !== null; r = reader.next()) out.push(r);
    assert.ok(reader.buffered <= LINE_BOUND, `SMTP reader holds ${reader.buffered} bytes`);
  }
  return out;
}

/** One IMAP string argument, written as an atom, a quoted string or a literal where each can hold it. */
function imapString(value: Buffer, pick: number): { wire: Buffer; arg: ImapArg } {
  const kinds: ('atom' | 'quoted' | 'literal')[] = ['literal'];
  if (/^[A-Za-z0-9._@-]+$/.test(value.toString('latin1'))) kinds.push('atom');
  if (!value.includes(0x0d) && !value.includes(0x0a) && !value.includes(0)) kinds.push('quoted');
  const kind = kinds[pick % kinds.length]!;
  if (kind === 'atom') return { wire: value, arg: { type: 'atom', value: value.toString('utf8') } };
  if (kind === 'quoted') {
    const escaped = value.toString('latin1').replace(/[\\"]/g, '\\$&');
    return { wire: Buffer.from(`"${escaped}"`, 'latin1'), arg: { type: 'quoted', value } };
  }
  const sync = pick % 2 === 0;
  return { wire: Buffer.concat([Buffer.from(`{${value.length}${sync ? '' : '+'}}\r\n`), value]), arg: { type: 'literal', value, sync } };
}

function withoutCrLf(lines: string[]): string[] {
  return lines.map((l) => l.replace(/[\r\n]/g, ''));
}

/** The verdict and what follows the header, once the parser has decided (or all bytes are in). */
function parseInChunks(chunks: Buffer[]): { result: ProxyParseResult; after: Buffer } {
  const parser = new ProxyHeaderParser();
  let pushed = 0;
  for (let i = 0; i < chunks.length; i++) {
    const r = parser.push(chunks[i]!);
    pushed += chunks[i]!.length;
    if (r.status === 'incomplete') {
      assert.ok(pushed <= Math.max(V1_MAX_LENGTH, 4096), `PROXY parser still undecided after ${pushed} bytes`);
      continue;
    }
    const after = r.status === 'done' ? Buffer.concat([r.rest, ...chunks.slice(i + 1)]) : Buffer.alloc(0);
    return { result: r.status === 'done' ? { ...r, rest: Buffer.alloc(0) } : r, after };
  }
  return { result: { status: 'incomplete' }, after: Buffer.alloc(0) };
}

/** Password-like words; the digit keeps them apart from every command name. */
const secret = fc.stringMatching(/^[a-z+/]{3,10}[0-9][A-Za-z0-9+/=]{4,12}$/);

/** Where a client puts a secret: after the command that takes it, or on a line of its own when out of step. */
const secretLines = (secrets: [string, string]): string[] => {
  const [s, t] = secrets;
  return [s, `${s} ${t}`, `PASS ${s}`, `PASS ${s} ${t}`, `AUTH PLAIN ${s}`, `APOP alice ${s}`, `a LOGIN alice ${s}`, `a AUTHENTICATE PLAIN ${s}`, `a LOGON ${s} ${t}`];
};

function assertHidden(text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.toUpperCase().includes(s.toUpperCase()), `${JSON.stringify(text)} shows a secret`);
}

export function fuzzProperties(): FuzzProperty[] {
  return [
    {
      name: 'logs: a password or SASL response, in its command or on a line of its own, never reaches the log text of any protocol',
      property: fc.property(fc.tuple(secret, secret), (secrets) => {
        for (const line of secretLines(secrets)) {
          const bytes = Buffer.from(`${line}\r\n`, 'latin1');
          for (const r of readImap([bytes])) if ((r as { type?: string }).type === 'command') assertHidden(maskImap((r as { command: never }).command), secrets);
          assertHidden(maskPop3(parsePop3Line(bytes.subarray(0, -2))), secrets);
          assertHidden(maskSmtp(parseCommand(bytes.subarray(0, -2))), secrets);
        }
      }),
    },
    {
      name: 'IMAP reader: any split of the stream reads the same as one chunk, never throws, stays bounded',
      property: fc.property(imapStream, cuts, (data, points) => {
        assert.deepEqual(readImap(chunked(data, points)), readImap([data]));
      }),
    },
    {
      name: 'IMAP reader: byte by byte reads the same as one chunk',
      property: fc.property(imapStream, (data) => {
        const bytes = [...data].map((b) => Buffer.from([b]));
        assert.deepEqual(readImap(bytes), readImap([data]));
      }),
    },
    {
      name: 'IMAP reader: LOGIN with atom, quoted or literal arguments gives back the exact strings and raw bytes',
      property: fc.property(fc.stringMatching(/^[A-Za-z0-9.]{1,8}$/), fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.nat(), fc.nat(), cuts, (tag, user, pass, p1, p2, points) => {
        const u = imapString(Buffer.from(user), p1);
        const p = imapString(Buffer.from(pass), p2);
        const wire = Buffer.concat([Buffer.from(`${tag} LOGIN `), u.wire, Buffer.from(' '), p.wire, Buffer.from('\r\n')]);
        const results = readImap(chunked(wire, points)).filter((r) => !('continuation' in (r as object)));
        assert.deepEqual(results, [{ type: 'command', command: { tag, name: 'LOGIN', args: [u.arg, p.arg], raw: wire } }]);
      }),
    },
    {
      name: 'IMAP reader, AUTHENTICATE responses: lines read one by one come back whole, however they arrive',
      property: fc.property(fc.array(fc.string({ maxLength: MAX_LINE }), { maxLength: 6 }), noiseBytes(40), cuts, (raw, tail, points) => {
        const lines = withoutCrLf(raw);
        const wire = Buffer.concat([Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1'), Buffer.from(tail)]);
        const reader = new ImapCommandReader({ maxLineLength: MAX_LINE, maxLiteralSize: MAX_LITERAL });
        const got: string[] = [];
        let dead = false;
        for (const c of chunked(wire, points)) {
          reader.push(c);
          for (let r = reader.nextLine(); r !== null; r = reader.nextLine()) {
            if (r.type === 'error') dead = true;
            else got.push(r.line.raw.toString('latin1'));
          }
          assert.ok(reader.buffered <= IMAP_BOUND, `IMAP reader holds ${reader.buffered} bytes`);
        }
        if (!dead) assert.deepEqual(got.slice(0, lines.length), lines);
      }),
    },
    {
      name: 'POP3 reader: any split reads the same as one chunk, never throws, stays bounded',
      property: fc.property(lineStream(MAX_LINE), cuts, (data, points) => {
        assert.deepEqual(readPop3(chunked(data, points)), readPop3([data]));
      }),
    },
    {
      name: 'POP3 reader: lines joined with CRLF come back as the same lines, keyword and rest rebuild each',
      property: fc.property(fc.array(fc.string({ maxLength: MAX_LINE }), { maxLength: 8 }), cuts, (raw, points) => {
        const lines = withoutCrLf(raw);
        const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'utf8');
        const got = readPop3(chunked(wire, points)) as { type: string; command: { keyword: string; rest: Buffer | null; line: Buffer } }[];
        const fits = lines.every((l) => Buffer.byteLength(l) <= MAX_LINE);
        if (!fits) return;
        assert.deepEqual(
          got.map((g) => g.command.line.toString('utf8')),
          lines,
        );
        for (const g of got) {
          const c = parsePop3Line(g.command.line);
          const rebuilt = c.rest === null ? c.line : Buffer.concat([c.line.subarray(0, c.keyword.length), Buffer.from(' '), c.rest]);
          assert.deepEqual(rebuilt, g.command.line);
          assert.equal(c.keyword, c.line.toString('latin1', 0, c.keyword.length).toUpperCase());
        }
      }),
    },
    {
      name: 'SMTP reader: any split reads the same as one chunk, never throws, stays bounded',
      property: fc.property(lineStream(MAX_LINE), cuts, (data, points) => {
        assert.deepEqual(readSmtp(chunked(data, points)), readSmtp([data]));
      }),
    },
    {
      name: 'SMTP reader: skip(n) drops exactly the next n bytes however they arrive',
      property: fc.property(lineStream(MAX_LINE), fc.nat(80), cuts, (data, n, points) => {
        assert.deepEqual(readSmtp(chunked(data, points), n), readSmtp([data.subarray(Math.min(n, data.length))]));
      }),
    },
    {
      name: 'SMTP reader and parser: lines come back unchanged; verb and argument split as written',
      property: fc.property(fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z]{1,16}$/), fc.string({ maxLength: 40 })), { maxLength: 6 }), cuts, (cmds, points) => {
        const lines = cmds.map(([verb, arg]) => {
          const a = arg.replace(/[\r\n]/g, '').replace(/^[ \t]+|[ \t]+$/g, '');
          return { verb, arg: a, line: a ? `${verb} ${a}` : verb };
        });
        const wire = Buffer.from(lines.map((l) => `${l.line}\r\n`).join(''), 'latin1');
        const got = readSmtp(chunked(wire, points)) as { type: 'line'; line: Buffer }[];
        assert.deepEqual(
          got.map((g) => parseCommand(g.line)),
          lines.map((l) => ({ verb: l.verb.toUpperCase(), arg: Buffer.from(l.arg, 'latin1').toString('latin1') })),
        );
      }),
    },
    {
      name: 'SASL: base64 of any bytes decodes back; any text decodes to null or to bytes of the matching length',
      property: fc.property(fc.uint8Array({ maxLength: 80 }), fc.string({ maxLength: 40 }), (raw, text) => {
        assert.deepEqual(decodeBase64(Buffer.from(raw).toString('base64')), Buffer.from(raw));
        assert.deepEqual(decodeInitialResponse('='), Buffer.alloc(0));
        const d = decodeBase64(text);
        if (d !== null) {
          assert.equal(text.length % 4, 0);
          assert.equal(d.length, (text.length / 4) * 3 - (text.match(/=+$/)?.[0].length ?? 0));
        }
      }),
    },
    {
      name: 'SASL PLAIN: authzid NUL authcid NUL password comes apart as built; other byte strings never throw',
      property: fc.property(fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 }), noiseBytes(60), (z, c, p, noise) => {
        const clean = (a: Uint8Array) => Buffer.from(a.filter((b) => b !== 0));
        const [authzid, authcid, password] = [clean(z), clean(c), clean(p)];
        const parsed = parsePlain(Buffer.concat([authzid, Buffer.from([0]), authcid, Buffer.from([0]), password]));
        assert.deepEqual(parsed && { ...parsed }, { authzid, authcid, password });
        const any = parsePlain(Buffer.from(noise));
        const nuls = [...noise].filter((b) => b === 0).length;
        assert.equal(any !== null, nuls === 2);
        const cred = checkCredentials(authcid, password);
        if (cred.ok) {
          assert.ok(cred.user.length > 0 && !/[\x00-\x1f\x7f]/.test(cred.user));
          assert.ok(cred.password.length > 0 && !/[\x00\r\n]/.test(cred.password));
        }
      }),
    },
    {
      name: 'PROXY: the same header as v1 text and as v2 binary (with TLVs) gives the same client and the same rest',
      property: fc.property(proxyCase, (c) => {
        const v1 = parseProxyHeader(proxyV1(c));
        const v2 = parseProxyHeader(proxyV2(c));
        assert.equal(v1.status, 'done');
        assert.equal(v2.status, 'done');
        if (v1.status !== 'done' || v2.status !== 'done') return;
        assert.deepEqual(v1.header.addresses, v2.header.addresses);
        assert.deepEqual(v1.rest, Buffer.from(c.rest));
        assert.deepEqual(v2.rest, Buffer.from(c.rest));
        if (c.family === 4) {
          assert.deepEqual(v1.header.addresses, { source: { ip: c.src.join('.'), port: c.sport }, destination: { ip: c.dst.join('.'), port: c.dport } });
        }
      }),
    },
    {
      name: 'PROXY: fed in any chunks, the parser decides as on the whole buffer, never throws, and never waits past the bound',
      property: fc.property(fc.oneof(proxyCase.map(proxyV1), proxyCase.map(proxyV2), proxyNoise), cuts, (data, points) => {
        const whole = parseProxyHeader(data);
        const inChunks = parseInChunks(chunked(data, points));
        if (whole.status === 'done') {
          assert.deepEqual(inChunks.result, { ...whole, rest: Buffer.alloc(0) });
          assert.deepEqual(inChunks.after, whole.rest);
        } else {
          assert.deepEqual(inChunks.result, whole);
        }
      }),
    },
  ];
}
