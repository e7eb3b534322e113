import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Secrets kept at rest (TOTP keys): AES-256-GCM with a key derived by HKDF-SHA256 from the
 * configured master key for one purpose, and the user name as additional data, so that a sealed
 * secret copied onto another user's record (or read for another purpose) fails to open (as
 * Authelia binds its encrypted TOTP secrets).
 */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly master: Buffer) {
    if (master.length < 32) throw new Error('the secret key must be at least 32 bytes');
  }

  private keyFor(purpose: string): Buffer {
    let key = this.keys.get(purpose);
    if (!key) {
      key = Buffer.from(hkdfSync('sha256', this.master, Buffer.alloc(0), `mailotp:${purpose}:v1`, 32));
      this.keys.set(purpose, key);
    }
    return key;
  }

  /** `v1.<iv>.<ciphertext>.<tag>`, base64url. */
  seal(purpose: string, user: string, plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keyFor(purpose), iv);
    cipher.setAAD(Buffer.from(user, 'utf8'));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', iv, ct, cipher.getAuthTag()].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
  }

  /** The plain text, or null when the sealed text was altered, belongs to another user or purpose, or another key sealed it. */
  open(purpose: string, user: string, sealed: string): string | null {
    const [v, iv, ct, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || ct === undefined || !tag) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.keyFor(purpose), Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(user, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}
