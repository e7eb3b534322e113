import { readFileSync } from 'node:fs';
import { MailotpError } from '../core/errors.js';

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : 'error';
}

/**
 * Checks the file before firebase-admin reads it, so that a mistake is a config error naming the
 * key, never a parse error quoting the file (which holds a private key). Returns the project id.
 */
export function checkServiceAccount(file: string): string {
  const fail = (why: string): never => {
    throw new MailotpError('MAILOTP_ERR_CONFIG', `push.fcm.serviceAccountFile: ${file} ${why}`);
  };
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot be read (${errorCode(err)})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    fail('is not valid JSON');
  }
  const sa = (typeof doc === 'object' && doc !== null ? doc : {}) as Record<string, unknown>;
  const missing = ['project_id', 'client_email', 'private_key'].filter((k) => typeof sa[k] !== 'string' || sa[k] === '');
  if (missing.length > 0) fail(`is not a service account key (missing ${missing.join(', ')})`);
  return sa.project_id as string;
}
