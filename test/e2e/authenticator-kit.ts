/** The authenticator app of the browser tests: codes from the test's own RFC 6238 implementation. */
import { base32Decode, totpCode } from '../helpers/rfc6238.js';

/** Codes typed by the test, from its own RFC 6238 implementation; never one of a time step already used. */
export class Authenticator {
  private readonly used = new Set<number>();
  constructor(readonly secret: string) {}
  /** A code the server has not seen: this step's or, once used, the next one's (one step of drift is allowed); else waits for a new step. */
  async code(): Promise<string> {
    for (;;) {
      const now = Math.floor(Date.now() / 1000);
      const step = [0, 30].map((d) => Math.floor((now + d) / 30)).find((s) => !this.used.has(s));
      if (step !== undefined) {
        this.used.add(step);
        return totpCode(base32Decode(this.secret), step * 30);
      }
      await new Promise((r) => setTimeout(r, (30 - (now % 30)) * 1000 + 200));
    }
  }
  /** Not a code of this step or the ones next to it. */
  wrong(): string {
    const now = Math.floor(Date.now() / 1000);
    const near = new Set([-30, 0, 30].map((d) => totpCode(base32Decode(this.secret), now + d)));
    return ['000000', '111111', '222222', '333333'].find((c) => !near.has(c))!;
  }
}
