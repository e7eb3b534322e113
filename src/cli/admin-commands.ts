import { Command, Option } from 'commander';
import { formatDuration, parseDuration } from '../config/duration.js';
import { METHOD_IDS, type MethodId } from '../core/second-factor.js';
import { canonicalIp } from '../core/trusted-networks.js';
import type { CoreApi } from '../core/services.js';
import { CliError, iso, print, withCore } from './context.js';

export const USER_ARG = 'user name, canonicalised as the config\'s `users` section says (ALICE is alice by default)';

/** The USER argument in its canonical form (config `users`): `device add ALICE` binds `alice`. */
export function canonicalUser(core: Pick<CoreApi, 'names'>, typed: string): string {
  const c = core.names.canonical(typed);
  if (!c.ok) throw new CliError(`invalid user name ${JSON.stringify(typed)}: ${c.why}`);
  return c.name;
}

/** A standing approval from a minute (tests, a visit) up to ten years. */
const MIN_STANDING_TTL_MS = 60_000;
const MAX_STANDING_TTL_MS = 3650 * 86_400_000;

/** One client address in the listeners' spelling (::ffff:10.0.0.1 is 10.0.0.1). */
/** A command's action about one USER: opens the admin core and hands over the canonical name. */
function userAction<O extends { config?: string }>(run: (core: CoreApi, user: string, o: O) => Promise<void>): (typed: string, o: O) => Promise<void> {
  return (typed, o) => withCore(o.config, (core) => run(core, canonicalUser(core, typed), o));
}

function clientIpArg(text: string): string {
  const ip = canonicalIp(text);
  if (ip === null) throw new CliError(`--ip: expected one IPv4 or IPv6 address, got ${JSON.stringify(text)}`);
  return ip;
}

export function configOption(): Option {
  return new Option('-c, --config <file>', 'config file (or set MAILOTP_CONFIG)');
}

export function deviceCommand(): Command {
  const device = new Command('device').description("bind or clear a user's one device");
  device
    .command('add')
    .description('bind a device for USER and print its token (shown once)')
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .option('--name <name>', 'a name the user recognises', 'Phone')
    .option('--replace', 'replace the device already bound (its token stops working)', false)
    .option('--json', 'print one JSON document', false)
    .action(
      userAction(async (core, user, o: { config?: string; name: string; replace: boolean; json: boolean }) => {
        const r = await core.devices.bind(user, o.name, o.replace);
        if (r.status === 'exists') {
          throw new CliError(`${user} already has a bound device (${r.device.name}, ${r.device.deviceId}); use --replace to replace it`);
        }
        print(
          o.json,
          { user, deviceId: r.device.deviceId, token: r.token },
          `Bound device "${r.device.name}" for ${user}\n  deviceId: ${r.device.deviceId}\n  token:    ${r.token}\nThe token is shown only once; give it to the device (Authorization: Bearer TOKEN).`,
        );
      }),
    );
  device
    .command('remove')
    .description("clear USER's bound device and the requests addressed to it, and end USER's web sessions")
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .option('--json', 'print one JSON document', false)
    .action(
      userAction(async (core, user, o: { config?: string; json: boolean }) => {
        const removed = await core.pairing.clear(user);
        if (!removed) throw new CliError(`${user} has no bound device`);
        // Whoever signed in on the portal with that phone is signed out everywhere.
        await core.webSessions.endAll(user);
        print(o.json, { user, deviceId: removed.deviceId, removed: true }, `Removed device ${removed.deviceId} of ${user}`);
      }),
    );
  return device;
}

export function userCommand(): Command {
  const userCmd = new Command('user').description("a user's two-factor settings");
  userCmd
    .command('set')
    .description('change USER\'s "two-factor required for send/receive" switch')
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .addOption(new Option('--daemon-otp <state>', 'two-factor required for send/receive').choices(['on', 'off']).makeOptionMandatory())
    .option('--json', 'print one JSON document', false)
    .action(
      userAction(async (core, user, o: { config?: string; daemonOtp: 'on' | 'off'; json: boolean }) => {
        await core.users.setDaemonOtp(user, o.daemonOtp === 'on', 'cli');
        print(o.json, { user, daemonOtp: o.daemonOtp === 'on' }, `daemon OTP for ${user}: ${o.daemonOtp}`);
      }),
    );
  userCmd
    .command('show')
    .description("USER's methods (passkeys by name and last use), bound device (no secrets), daemon-OTP switch, approvals and remembered browsers")
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .option('--json', 'print one JSON document', false)
    .action(
      userAction(async (core, user, o: { config?: string; json: boolean }) => {
        const [device, approvals, methods, recoveryLeft, passkeys, browsers] = await Promise.all([
          core.devices.ofUser(user),
          core.approvals.list(user),
          core.secondFactors.methodsOf(user),
          core.recoveryCodes.remaining(user),
          core.passkeys.list(user),
          core.rememberedBrowsers.list(user),
        ]);
        const defaultMethod = await core.secondFactors.defaultMethod(user, methods);
        const missing = await core.secondFactors.missing(user, methods);
        const { own: daemonOtp, required } = await core.users.daemonOtp(user, device);
        const doc = {
          user,
          daemonOtp,
          daemonOtpRequired: required,
          methods,
          defaultMethod,
          recoveryCodesLeft: recoveryLeft,
          passkeys: passkeys.map((p) => ({ name: p.name, createdAt: iso(p.createdAt), lastUsedAt: p.lastUsedAt !== undefined ? iso(p.lastUsedAt) : null })),
          missingMethods: missing,
          device: device
            ? { deviceId: device.deviceId, name: device.name, createdAt: iso(device.createdAt), pushPlatform: device.pushPlatform ?? null, pushRegistered: Boolean(device.pushToken), webPush: Boolean(device.webPush) }
            : null,
          approvals: approvals.map((a) => ({ clientIp: a.clientIp, approvedAt: iso(a.approvedAt), expiresAt: iso(a.expiresAt), standing: a.standing === true })),
          rememberedBrowsers: browsers.map((b) => ({
            browser: b.browser,
            os: b.os,
            clientIp: b.clientIp,
            rememberedAt: iso(b.createdAt),
            lastUsedAt: b.lastUsedAt !== undefined ? iso(b.lastUsedAt) : null,
            expiresAt: iso(b.expiresAt),
          })),
        };
        const lines = [
          `user:        ${user}`,
          `daemon OTP:  ${daemonOtp ? 'on' : 'off'} (required now: ${required ? 'yes' : 'no'})`,
          `methods:     ${methods.length === 0 ? 'none' : methods.map((m) => (m === defaultMethod ? `${m} (default)` : m)).join(', ')}${missing > 0 ? `; the policy wants ${missing} more` : ''}`,
          `recovery:    ${recoveryLeft} unused code${recoveryLeft === 1 ? '' : 's'}`,
          `passkeys:    ${passkeys.length === 0 ? 'none' : ''}`,
          ...passkeys.map((p) => `  ${p.name}  added ${iso(p.createdAt)}, last used ${p.lastUsedAt !== undefined ? iso(p.lastUsedAt) : 'never'}`),
          `device:      ${device ? `${device.name} (${device.deviceId}), bound ${iso(device.createdAt)}${device.pushToken ? `, push: ${device.pushPlatform}` : ''}${device.webPush ? ', web push' : ''}` : 'none'}`,
          `approvals:   ${approvals.length === 0 ? 'none' : ''}`,
          ...approvals.map((a) => `  ${a.clientIp}  until ${iso(a.expiresAt)}${a.standing ? '  (standing)' : ''}`),
          `browsers:    ${browsers.length === 0 ? 'none remembered' : ''}`,
          ...browsers.map((b) => `  ${b.os ? `${b.browser} on ${b.os}` : b.browser}  from ${b.clientIp}  remembered ${iso(b.createdAt)}  last used ${b.lastUsedAt !== undefined ? iso(b.lastUsedAt) : 'never'}  until ${iso(b.expiresAt)}`),
        ];
        print(o.json, doc, lines.join('\n'));
      }),
    );
  userCmd
    .command('reset')
    .description("remove USER's second factors and remembered browsers (all of them unless one is named) and end USER's web sessions")
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .option('--totp', 'the authenticator app', false)
    .option('--passkeys', 'the passkeys', false)
    .option('--recovery', 'the recovery codes', false)
    .option('--device', 'the bound phone (as `device remove`)', false)
    .option('--browsers', 'the remembered browsers (they ask for the second step again)', false)
    .option('--all', 'every method and the remembered browsers (the default when none is named)', false)
    .option('--json', 'print one JSON document', false)
    .action(
      userAction(async (core, user, o: { config?: string; totp: boolean; passkeys: boolean; recovery: boolean; device: boolean; browsers: boolean; all: boolean; json: boolean }) => {
        const named: MethodId[] = [...(o.device ? ['phone' as const] : []), ...(o.totp ? ['totp' as const] : []), ...(o.passkeys ? ['passkey' as const] : []), ...(o.recovery ? ['recovery' as const] : [])];
        const everything = o.all || (named.length === 0 && !o.browsers);
        const which = everything ? METHOD_IDS : named;
        const removed: MethodId[] = [];
        const notSetUp: MethodId[] = [];
        for (const m of which) ((await core.secondFactors.reset(user, m, 'cli')) ? removed : notSetUp).push(m);
        // A remembered browser stands in for a second factor: a reset of them all forgets it too.
        const browsersRevoked = everything || o.browsers ? await core.rememberedBrowsers.revokeAll(user, 'cli') : 0;
        // Whoever signed in with a removed method (or a forgotten browser) is signed out everywhere.
        if (removed.length > 0 || browsersRevoked > 0) await core.webSessions.endAll(user);
        const label: Record<MethodId, string> = { phone: 'device', totp: 'authenticator app', passkey: 'passkeys', recovery: 'recovery codes' };
        const lines = [
          removed.length > 0 ? `Removed for ${user}: ${removed.map((m) => label[m]).join(', ')}; web sessions ended` : `Nothing removed for ${user}`,
          ...(everything || o.browsers ? [`Remembered browsers forgotten: ${browsersRevoked}${browsersRevoked > 0 && removed.length === 0 ? "; web sessions ended" : ""}`] : []),
          ...(notSetUp.length > 0 ? [`Not set up: ${notSetUp.map((m) => `no ${label[m]}`).join(', ')}`] : []),
        ];
        print(o.json, { user, removed, notSetUp, ...(everything || o.browsers ? { browsersRevoked } : {}) }, lines.join('\n'));
        if (named.length > 0 && removed.length === 0 && browsersRevoked === 0) process.exitCode = 1;
      }),
    );
  return userCmd;
}

export function approvalsCommand(): Command {
  const approvals = new Command('approvals').description('the approval windows that let clients in');
  approvals
    .command('list')
    .description('list unexpired approvals (standing ones marked) and the trusted networks (daemonOtp.trustedNetworks)')
    .addOption(configOption())
    .option('--user <user>', `only this user (${USER_ARG})`)
    .option('--json', 'print one JSON document', false)
    .action(async (o: { config?: string; user?: string; json: boolean }) => {
      await withCore(o.config, async (core) => {
        const list = await core.approvals.list(o.user ? canonicalUser(core, o.user) : null);
        const trustedNetworks = [...core.approvals.trustedNetworks];
        const doc = {
          approvals: list.map((a) => ({ user: a.user, clientIp: a.clientIp, approvedAt: iso(a.approvedAt), expiresAt: iso(a.expiresAt), standing: a.standing === true })),
          trustedNetworks,
        };
        const lines = list.length === 0 ? ['no approvals'] : doc.approvals.map((a) => `${a.user}  ${a.clientIp}  ${a.standing ? 'standing' : 'tap'}  approved ${a.approvedAt}  expires ${a.expiresAt}`);
        lines.push(`trusted networks (every user, no tap): ${trustedNetworks.length === 0 ? 'none' : trustedNetworks.join(', ')}`);
        print(o.json, doc, lines.join('\n'));
      });
    });
  approvals
    .command('grant')
    .description('a standing approval for a device that can never tap (a scanner): USER from exactly --ip, for --ttl; ended by `approvals revoke`')
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .requiredOption('--ip <ip>', 'the client address (one IPv4 or IPv6 address, no network)')
    .requiredOption('--ttl <duration>', `how long, e.g. 365d (${formatDuration(MIN_STANDING_TTL_MS)} to ${formatDuration(MAX_STANDING_TTL_MS)})`)
    .option('--json', 'print one JSON document', false)
    .action(async (typed: string, o: { config?: string; ip: string; ttl: string; json: boolean }) => {
      const ip = clientIpArg(o.ip);
      const ttlMs = parseDuration(o.ttl);
      if (ttlMs === null || ttlMs < MIN_STANDING_TTL_MS || ttlMs > MAX_STANDING_TTL_MS) {
        throw new CliError(`--ttl: expected a duration from ${formatDuration(MIN_STANDING_TTL_MS)} to ${formatDuration(MAX_STANDING_TTL_MS)} like "365d", got ${JSON.stringify(o.ttl)}`);
      }
      await withCore(o.config, async (core) => {
        const user = canonicalUser(core, typed);
        const a = await core.approvals.grantStanding(user, ip, ttlMs);
        print(
          o.json,
          { user, clientIp: a.clientIp, approvedAt: iso(a.approvedAt), expiresAt: iso(a.expiresAt), standing: true },
          `standing approval for ${user} from ${a.clientIp} until ${iso(a.expiresAt)}`,
        );
      });
    });
  approvals
    .command('revoke')
    .description("end USER's approvals now, standing ones too (only those of --ip when given)")
    .argument('<user>', USER_ARG)
    .addOption(configOption())
    .option('--ip <ip>', 'only the approval for this client IP')
    .option('--json', 'print one JSON document', false)
    .action(
      userAction(async (core, user, o: { config?: string; ip?: string; json: boolean }) => {
        const n = await core.approvals.revoke(user, o.ip === undefined ? undefined : clientIpArg(o.ip));
        print(o.json, { user, revoked: n }, `revoked ${n} approval${n === 1 ? '' : 's'} of ${user}`);
      }),
    );
  return approvals;
}
