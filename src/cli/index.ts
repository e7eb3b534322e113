import { Command, Option } from 'commander';
import { checkConfigFiles } from './check-config-files.js';
import { ConfigError, loadConfig } from '../config/load-config.js';
import { isMailotpError } from '../core/errors.js';
import { UserNames } from '../core/user-names.js';
import { configHoldTimeWarnings } from '../core/hold-times.js';
import { approvalsCommand, deviceCommand, userCommand } from './admin-commands.js';
import { auditCommand } from './audit-command.js';
import { CliError, configPath } from './context.js';
import { doctorCommand } from './doctor-command.js';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('mailotp')
    .description('Phone-approved two-factor login in front of IMAP, POP3 and SMTP submission servers')
    .version(VERSION)
    .showHelpAfterError();

  program
    .command('start')
    .description('run the mail listeners, the portal and the device API')
    .addOption(new Option('-c, --config <file>', 'config file (or set MAILOTP_CONFIG)'))
    .addHelpText(
      'after',
      `
Limits (config section "limits"; README "Limits"):
  maxConnections [10000], maxConnectionsPerIp [50]  connections open at once in this process
      (per client IP after PROXY protocol); past them: * BYE / -ERR [SYS/TEMP] / 421, then close
  maxHeldLoginsPerUser [20]  logins of one user waiting for a tap at once, each with an upstream
      session; past it the login gets the temporary refusal and the connection is closed
  failedLoginsPerUser [10], failedLoginsPerIp [30] per failedLoginWindow [15m]  counted before the
      upstream is asked (shared through the store); the per-user cap spares addresses that hold an
      approval (standing ones too) or logged in as that user within the window

Exemptions and audit (README "Exemptions and the audit trail"):
  daemonOtp.trustedNetworks [none]  CIDRs whose clients skip the tap after a correct password
      (matched on the real client address, after PROXY protocol); standing approvals for devices
      that can never tap: mailotp approvals grant USER --ip IP --ttl 365d
  audit.retention [90d]  how long every decision stays in the store for \`mailotp audit\`

Signals (README "Stopping"):
  SIGTERM, SIGINT  stop accepting; clients not logged in (held logins too) get * BYE / -ERR [SYS/TEMP]
      / 421 4.3.2 at once; logged-in sessions may finish for up to shutdown.drainTimeout [30s]; exit 0
  SIGHUP  reload the TLS certificate and key; open sessions keep theirs`,
    )
    .action(async (o: { config?: string }) => {
      // Loaded on demand: the server pulls in fastify, firebase-admin and every protocol, which the
      // admin commands do not need and should not wait for.
      const { runServer } = await import('./start-command.js');
      await runServer(configPath(o.config));
    });

  program
    .command('check-config')
    .description(
      'validate the config file and the files it names (certificate, CAs, FCM key); print each problem with its key path, ' +
        'or OK and the upstream user-name rule the `users` section assumes; warn when a login hold comes within 5 s of a common client\'s timeout',
    )
    .addOption(new Option('-c, --config <file>', 'config file (or set MAILOTP_CONFIG)'))
    .action((o: { config?: string }) => {
      const file = configPath(o.config);
      const config = loadConfig(file);
      const problems = checkConfigFiles(config);
      if (problems.length > 0) throw new ConfigError(problems);
      // Warnings, not problems: the config works, but some clients may give up on a held login.
      for (const w of configHoldTimeWarnings(config)) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
      process.stdout.write(`${file}: OK\nusers: ${new UserNames(config.users).describe()}\n`);
    });

  program.addCommand(deviceCommand());
  program.addCommand(userCommand());
  program.addCommand(approvalsCommand());
  program.addCommand(auditCommand());
  program.addCommand(doctorCommand());
  return program;
}

/** Entry point of bin/mailotp. Exit 1 with a readable message on any expected failure. */
export async function run(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${p.path ? `${p.path}: ` : ''}${p.message}\n`);
    } else if (err instanceof CliError || isMailotpError(err)) {
      process.stderr.write(`mailotp: ${err.message}\n`);
    } else {
      process.stderr.write(`mailotp: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exitCode = 1;
  }
}
