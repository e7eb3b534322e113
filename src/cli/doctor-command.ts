import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { parseDuration } from '../config/duration.js';
import { loadConfig } from '../config/load-config.js';
import { systemClock } from '../core/clock.js';
import type { CheckResult } from '../doctor/check-result.js';
import { CHECK_GROUPS, runDoctor, type CheckGroup } from '../doctor/doctor.js';
import { CliError, configPath } from './context.js';

/** The environment variable that may carry the test account's password (never argv: `ps` shows it). */
export const DOCTOR_PASSWORD_ENV = 'MAILOTP_DOCTOR_PASSWORD';

const LABEL: Record<CheckResult['status'], string> = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' };

interface DoctorFlags {
  config?: string;
  user?: string;
  passwordFile?: string;
  host?: string;
  only?: string;
  timeout: string;
  certWarnDays: string;
  json: boolean;
}

function password(flags: DoctorFlags): string | undefined {
  if (flags.passwordFile) {
    let text: string;
    try {
      text = readFileSync(flags.passwordFile, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read --password-file ${flags.passwordFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    // One trailing line break is the editor's, not the password's.
    return text.replace(/\r?\n$/, '');
  }
  return process.env[DOCTOR_PASSWORD_ENV];
}

function groups(only: string | undefined): CheckGroup[] | undefined {
  if (only === undefined) return undefined;
  const picked = only.split(',').map((g) => g.trim()).filter((g) => g !== '');
  const unknown = picked.filter((g) => !(CHECK_GROUPS as readonly string[]).includes(g));
  if (unknown.length > 0 || picked.length === 0) throw new CliError(`--only takes a comma-separated list of ${CHECK_GROUPS.join(', ')}`);
  return picked as CheckGroup[];
}

function line(r: CheckResult): string {
  return `${LABEL[r.status].padEnd(4)}  ${r.name}: ${r.detail}${r.hint && r.status !== 'ok' ? `\n      hint: ${r.hint}` : ''}`;
}

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check a running set-up end to end with its config: listeners, certificate, upstreams, store, push channels, portal; exit 1 on any FAIL')
    .addOption(new Option('-c, --config <file>', 'config file (or set MAILOTP_CONFIG)'))
    .option('--user <name>', 'a test account: log in to each upstream with it (password from --password-file or MAILOTP_DOCTOR_PASSWORD)')
    .option('--password-file <file>', "file holding the test account's password (one trailing newline is ignored)")
    .option('--host <address>', "address to reach mailotp's own listeners and portal at [their bind address; loopback for 0.0.0.0 and ::]")
    .option('--only <groups>', `comma-separated checks to run: ${CHECK_GROUPS.join(', ')} [all]`)
    .option('--timeout <duration>', 'longest any one check may take', '10s')
    .option('--cert-warn-days <days>', 'warn when the certificate expires within this many days', '14')
    .option('--json', 'print one JSON document: {"ok","checks":[{"name","status","detail","hint"}]}', false)
    .addHelpText(
      'after',
      `
Each line is ok, warn, FAIL or skip, with a hint for warn and FAIL. Exit status 0 when nothing FAILs
(warnings included), 1 on any FAIL. The password is never taken on the command line and never printed.`,
    )
    .action(async (flags: DoctorFlags) => {
      const config = loadConfig(configPath(flags.config));
      const timeoutMs = parseDuration(flags.timeout);
      if (timeoutMs === null || timeoutMs < 100) throw new CliError('--timeout: expected a duration like "10s"');
      const certWarnDays = Number(flags.certWarnDays);
      if (!Number.isInteger(certWarnDays) || certWarnDays < 0) throw new CliError('--cert-warn-days: expected a whole number of days');
      const secret = password(flags);
      if (flags.user === undefined && flags.passwordFile !== undefined) throw new CliError('--password-file needs --user');
      if (flags.user !== undefined && !secret) throw new CliError(`--user needs the password in --password-file or ${DOCTOR_PASSWORD_ENV}`);
      const account = flags.user !== undefined && secret ? { user: flags.user, password: secret } : undefined;

      const checks = await runDoctor(config, { clock: systemClock, host: flags.host, account, only: groups(flags.only), timeoutMs, certWarnDays });
      const failed = checks.some((c) => c.status === 'fail');
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ok: !failed, checks }, null, 2)}\n`);
      } else {
        const count = (s: CheckResult['status']) => checks.filter((c) => c.status === s).length;
        process.stdout.write(`${checks.map(line).join('\n')}\n\n${count('ok')} ok, ${count('warn')} warn, ${count('fail')} FAIL, ${count('skip')} skipped\n`);
      }
      if (failed) process.exitCode = 1;
    });
}
