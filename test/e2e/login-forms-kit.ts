import { RawPop3 } from './pop3-kit.js';
import { b64 } from './smtp-kit.js';

/** What a login form needs of a connection: RawPop3 is a plain line client for any protocol. */
export class RawTlsLines {
  private constructor(private readonly raw: RawPop3) {}

  /** Implicit TLS from a chosen source address. */
  static async connect(port: number, localAddress: string): Promise<RawTlsLines> {
    return new RawTlsLines(await RawPop3.secure(port, localAddress));
  }

  write(text: string): void {
    this.raw.write(text);
  }

  /** The first complete line matching re; the lines before it are dropped. */
  async until(re: RegExp, timeoutMs = 20_000): Promise<string> {
    const lines = await this.raw.until(re, timeoutMs);
    return lines[lines.length - 1] ?? '';
  }

  close(): void {
    this.raw.destroy();
  }
}

export type Protocol = 'imap' | 'pop3' | 'smtp';

/** One way of logging in: sends user and password as that form does and returns the final reply line. */
export interface LoginForm {
  name: string;
  protocol: Protocol;
  /** Runs the login on a connection that has read its greeting. */
  login(c: RawTlsLines, user: string, pass: string): Promise<string>;
}

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');
const plain = (user: string, pass: string, authzid = ''): string => b64(`${authzid}\0${user}\0${pass}`);

const IMAP_DONE = /^a (OK|NO|BAD)/;
const POP_DONE = /^(\+OK|-ERR)/;
const SMTP_DONE = /^\d{3} /;

export const GREETING: Record<Protocol, RegExp> = { imap: /^\* OK/, pop3: /^\+OK/, smtp: /^220 / };
export const SUCCESS: Record<Protocol, RegExp> = { imap: /^a OK/, pop3: /^\+OK/, smtp: /^235 / };
export const AUTH_FAILED: Record<Protocol, RegExp> = { imap: /^a NO \[AUTHENTICATIONFAILED\]/, pop3: /^-ERR \[AUTH\]/, smtp: /^535 5\.7\.8/ };

async function ehlo(c: RawTlsLines): Promise<void> {
  c.write('EHLO client.example\r\n');
  await c.until(/^250 /);
}

/** Every login form of every protocol that mailotp accepts. */
export const LOGIN_FORMS: readonly LoginForm[] = [
  {
    name: 'IMAP LOGIN atom',
    protocol: 'imap',
    async login(c, u, p) {
      c.write(`a LOGIN ${u} ${p}\r\n`);
      return c.until(IMAP_DONE);
    },
  },
  {
    name: 'IMAP LOGIN quoted',
    protocol: 'imap',
    async login(c, u, p) {
      c.write(`a LOGIN "${u}" "${p}"\r\n`);
      return c.until(IMAP_DONE);
    },
  },
  {
    name: 'IMAP LOGIN literal',
    protocol: 'imap',
    async login(c, u, p) {
      c.write(`a LOGIN {${byteLength(u)}}\r\n`);
      await c.until(/^\+/);
      c.write(`${u} {${byteLength(p)}}\r\n`);
      await c.until(/^\+/);
      c.write(`${p}\r\n`);
      return c.until(IMAP_DONE);
    },
  },
  {
    name: 'IMAP AUTHENTICATE PLAIN (SASL-IR)',
    protocol: 'imap',
    async login(c, u, p) {
      c.write(`a AUTHENTICATE PLAIN ${plain(u, p)}\r\n`);
      return c.until(IMAP_DONE);
    },
  },
  {
    name: 'IMAP AUTHENTICATE PLAIN (continuation, authzid = authcid)',
    protocol: 'imap',
    async login(c, u, p) {
      c.write('a AUTHENTICATE PLAIN\r\n');
      await c.until(/^\+/);
      c.write(`${plain(u, p, u)}\r\n`);
      return c.until(IMAP_DONE);
    },
  },
  {
    name: 'IMAP AUTHENTICATE LOGIN',
    protocol: 'imap',
    async login(c, u, p) {
      c.write('a AUTHENTICATE LOGIN\r\n');
      await c.until(/^\+/);
      c.write(`${b64(u)}\r\n`);
      await c.until(/^\+/);
      c.write(`${b64(p)}\r\n`);
      return c.until(IMAP_DONE);
    },
  },
  {
    name: 'POP3 USER/PASS',
    protocol: 'pop3',
    async login(c, u, p) {
      c.write(`USER ${u}\r\n`);
      await c.until(/^\+OK/);
      c.write(`PASS ${p}\r\n`);
      return c.until(POP_DONE);
    },
  },
  {
    name: 'POP3 AUTH PLAIN (initial response)',
    protocol: 'pop3',
    async login(c, u, p) {
      c.write(`AUTH PLAIN ${plain(u, p)}\r\n`);
      return c.until(POP_DONE);
    },
  },
  {
    name: 'POP3 AUTH PLAIN (continuation)',
    protocol: 'pop3',
    async login(c, u, p) {
      c.write('AUTH PLAIN\r\n');
      await c.until(/^\+ ?$/);
      c.write(`${plain(u, p)}\r\n`);
      return c.until(POP_DONE);
    },
  },
  {
    name: 'SMTP AUTH PLAIN',
    protocol: 'smtp',
    async login(c, u, p) {
      await ehlo(c);
      c.write(`AUTH PLAIN ${plain(u, p)}\r\n`);
      return c.until(SMTP_DONE);
    },
  },
  {
    name: 'SMTP AUTH LOGIN',
    protocol: 'smtp',
    async login(c, u, p) {
      await ehlo(c);
      c.write('AUTH LOGIN\r\n');
      await c.until(/^334 /);
      c.write(`${b64(u)}\r\n`);
      await c.until(/^334 /);
      c.write(`${b64(p)}\r\n`);
      return c.until(SMTP_DONE);
    },
  },
];

/** Connects from `ip`, reads the greeting, runs the form, closes; returns the final reply line. */
export async function loginOnce(form: LoginForm, port: number, ip: string, user: string, pass: string): Promise<string> {
  const c = await RawTlsLines.connect(port, ip);
  try {
    await c.until(GREETING[form.protocol]);
    return await form.login(c, user, pass);
  } finally {
    c.close();
  }
}
