import type { MethodId } from '../../core/second-factor.js';
import type { RecentRequest } from '../../core/request-service.js';
import type { ApprovalRecord, DeviceRecord } from '../../core/types.js';
import { html, type SafeHtml } from './html.js';
import { card, csrfField, errorNotice, formatTime, introPage, postButton, stackTable, titledPage, type PageContext } from './layout.js';
import { passkeySection, type PasskeySettings } from './passkey-views.js';
import { browsersSection, type BrowsersModel } from './remembered-browser-views.js';
import { METHOD_TEXT } from './sign-in-views.js';
import type { TextKey } from './texts.js';

export interface SettingsModel {
  user: string;
  device: DeviceRecord | null;
  /** A QR pairing this session started and that still waits for the phone. */
  pair: { url: string; qr: string; number: number; expiresAt: number } | null;
  /** fixed: why the admin's settings decide the switch, when they do. */
  daemon: { on: boolean; fixed: 'bound' | 'all' | 'off' | null };
  /** False when the user has a phone and this session did not pass it: changes need a new sign-in. */
  canChangeMethods: boolean;
  /** How many more methods the admin requires: while above 0 the page offers nothing else. */
  mustSetUp: number;
  /** What the user has set up, what the admin allows, and what the sign-in offers first. */
  methods: MethodId[];
  available: MethodId[];
  defaultMethod: MethodId | null;
  /** pending: a new key waiting for its first code (with its QR code). */
  totp: { on: boolean; pending: { secret: string; qr: string } | null };
  /** codes: just generated, shown this once. */
  recovery: { left: number; codes: string[] | null };
  passkeys: PasskeySettings;
  approvals: ApprovalRecord[];
  recent: RecentRequest[];
  /** The remembered browsers; absent when the feature is off and none are left. */
  browsers?: BrowsersModel | null;
  notice?: TextKey;
  error?: TextKey;
}

const FIXED_TEXT = { bound: 'daemonFixedBound', all: 'daemonFixedAll', off: 'daemonFixedOff' } as const;
const STATUS_TEXT = { approved: 'statusApproved', denied: 'statusDenied', expired: 'statusExpired', pending: 'statusPending' } as const;

/** The signed-in user's page: phone, pairing, the mail-app switch, approvals and recent requests. */
export function settingsPage(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const header = html`<div class="who"><span>${t('signedInAs', { user: m.user })}</span>${postButton(ctx, '/signout', 'signOut')}</div>`;
  return titledPage(
    ctx,
    'settingsTitle',
    html`
${m.notice ? html`<p class="notice ok" role="status">${t(m.notice)}</p>` : ''}
${errorNotice(ctx, m.error)}
${m.mustSetUp > 0 ? html`<p class="notice error" role="alert">${t('mustSetUp', { count: String(m.mustSetUp) })}</p>` : ''}
${m.available.includes('phone') ? phoneSection(ctx, m) : ''}
${m.available.includes('totp') ? totpSection(ctx, m) : ''}
${m.available.includes('passkey') ? passkeySection(ctx, m.passkeys, m.canChangeMethods) : ''}
${m.available.includes('recovery') ? recoverySection(ctx, m) : ''}
${m.methods.length > 1 && m.mustSetUp === 0 ? defaultSection(ctx, m) : ''}
${m.mustSetUp > 0 ? '' : html`${daemonSection(ctx, m)}
${m.browsers ? browsersSection(ctx, m.browsers) : ''}
${approvalsSection(ctx, m)}
${recentSection(ctx, m)}`}`,
    header,
  );
}

function phoneSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const d = m.device;
  if (d) {
    return card(
      ctx,
      'phone',
      'phoneSection',
      html`<dl class="facts">
<dt>${t('deviceName')}</dt><dd data-testid="device-name">${d.name}</dd>
<dt>${t('boundSince')}</dt><dd>${formatTime(ctx, d.createdAt)}</dd>
<dt>${t('lastUsed')}</dt><dd>${d.lastUsedAt !== undefined ? formatTime(ctx, d.lastUsedAt) : t('never')}</dd>
</dl>
${
  m.canChangeMethods
    ? html`<form method="get" action="/settings/clear-device" class="inline"><button type="submit" class="danger">${t('clearDevice')}</button></form>`
    : html`<p class="hint">${t('stepUp')}</p>`
}`,
    );
  }
  return card(
    ctx,
    'phone',
    'phoneSection',
    html`<p>${t('noPhone')}</p>
${m.pair ? pairingBox(ctx, m.pair) : postButton(ctx, '/settings/pair/start', 'bindPhone', { className: 'primary' })}
<h3>${t('codeSection')}</h3>
<form method="post" action="/settings/pair/code">
${csrfField(ctx)}
<label for="device-code">${t('deviceCode')}</label>
<input id="device-code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="16" aria-describedby="device-code-hint" placeholder="123 456 789">
<p id="device-code-hint" class="hint">${t('codeHint')}</p>
<button type="submit">${t('bind')}</button>
</form>`,
  );
}

function totpSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const p = m.totp.pending;
  let body: SafeHtml;
  if (p) {
    body = html`<p>${t('totpScan')}</p>
<img class="qr" src="${p.qr}" alt="${t('totpQrAlt')}" width="240" height="240">
<p class="link"><span class="label">${t('totpKey')}:</span> <code data-testid="totp-secret">${p.secret}</code></p>
<form method="post" action="/settings/totp/activate">
${csrfField(ctx)}
<label for="totp-code">${t('code')}</label>
<input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required maxlength="8">
<button type="submit" class="primary">${t('activate')}</button>
</form>
${postButton(ctx, '/settings/totp/cancel', 'cancel')}`;
  } else if (!m.canChangeMethods) {
    body = html`<p>${t(m.totp.on ? 'totpOn' : 'totpNone')}</p><p class="hint">${t('stepUp')}</p>`;
  } else if (m.totp.on) {
    body = html`<p>${t('totpOn')}</p>
<div class="actions"><form method="get" action="/settings/totp/new" class="inline"><button type="submit">${t('totpNewKey')}</button></form>
${postButton(ctx, '/settings/totp/remove', 'totpRemove', { className: 'danger' })}</div>`;
  } else {
    body = html`<p>${t('totpNone')}</p>${postButton(ctx, '/settings/totp/start', 'totpSetUp', { className: 'primary' })}`;
  }
  return card(ctx, 'totp', 'totpSection', body, 'totp');
}

function recoverySection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const { codes, left } = m.recovery;
  return card(
    ctx,
    'recovery',
    'recoverySection',
    html`${
  codes
    ? html`<p class="notice" role="status">${t('recoveryShown')}</p><ol class="codes" data-testid="recovery-codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ol>`
    : html`<p>${left > 0 ? t('recoveryLeft', { count: String(left) }) : t('recoveryNone')}</p>`
}
${m.canChangeMethods ? postButton(ctx, '/settings/recovery/generate', 'recoveryGenerate') : html`<p class="hint">${t('stepUp')}</p>`}`,
    'recovery',
  );
}

function defaultSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const locked = !m.canChangeMethods;
  return card(
    ctx,
    'default',
    'defaultSection',
    html`<form method="post" action="/settings/default-method">
${csrfField(ctx)}
<label for="default-method">${t('defaultMethod')}</label>
<select id="default-method" name="method"${locked ? html` disabled` : ''}>${m.methods.map(
    (id) => html`<option value="${id}"${id === m.defaultMethod ? html` selected` : ''}>${t(METHOD_TEXT[id])}</option>`,
  )}</select>
${locked ? html`<p class="hint">${t('stepUp')}</p>` : html`<button type="submit">${t('save')}</button>`}
</form>`,
  );
}

function pairingBox(ctx: PageContext, p: NonNullable<SettingsModel['pair']>): SafeHtml {
  const { t } = ctx;
  return html`<div class="pairing" id="pairing">
<div class="pairing" data-while-waiting>
<p>${t('bindIntro')}</p>
<p class="match" data-testid="match-number">${p.number}</p>
<img class="qr" src="${p.qr}" alt="${t('qrAlt')}" width="240" height="240">
<p class="link"><span class="label">${t('pairLinkLabel')}:</span> <a data-testid="pair-link" href="${p.url}">${p.url}</a></p>
</div>
<p class="notice" role="status" aria-live="polite" data-follow="/settings/pair/status?wait=1">${t('pairWaiting', { time: new Intl.DateTimeFormat(ctx.lang, { timeStyle: 'short' }).format(p.expiresAt) })}</p>
<p class="actions" data-when-done hidden><a href="/settings" class="button">${t('startAgain')}</a></p>
${postButton(ctx, '/settings/pair/cancel', 'cancel')}
</div>`;
}

function daemonSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const { on, fixed } = m.daemon;
  const locked = fixed !== null || !m.canChangeMethods;
  return card(
    ctx,
    'daemon',
    'daemonSection',
    html`<form method="post" action="/settings/daemon-otp" data-autosubmit>
${csrfField(ctx)}
<div class="switch-row">
<input type="checkbox" role="switch" id="daemon-otp" name="daemonOtp" value="on"${on ? html` checked` : ''}${locked ? html` disabled` : ''} aria-describedby="daemon-help">
<label for="daemon-otp">${t('daemonSwitch')}</label>
<span class="state" aria-hidden="true">${on ? t('on') : t('off')}</span>
</div>
<p id="daemon-help" class="hint">${fixed ? t(FIXED_TEXT[fixed]) : !m.canChangeMethods ? t('stepUp') : t('daemonHelp')}</p>
${locked ? '' : html`<button type="submit" data-save>${t('save')}</button>`}
</form>`,
  );
}

function approvalsSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const rows = m.approvals.map(
    (a, i) => html`<tr>
<td data-label="${t('colUser')}">${a.user}</td>
<td data-label="${t('colAddress')}" id="appr-${i}">${a.clientIp}</td>
<td data-label="${t('colClient')}">${a.clientName ?? t('unknownClient')}</td>
<td data-label="${t('colProtocol')}">${a.protocol?.toUpperCase() ?? ''}</td>
<td data-label="${t('colUntil')}">${formatTime(ctx, a.expiresAt)}</td>
<td>${postButton(ctx, '/settings/approvals/revoke', 'revoke', { hidden: { clientIp: a.clientIp }, describedBy: `appr-${i}` })}</td>
</tr>`,
  );
  const head = { columns: ['colUser', 'colAddress', 'colClient', 'colProtocol', 'colUntil'], action: 'revoke' } as const;
  return card(ctx, 'appr', 'approvalsSection', rows.length === 0 ? html`<p>${t('noApprovals')}</p>` : stackTable(ctx, head, rows));
}

function recentSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const rows = m.recent.map(
    (r) => html`<tr>
<td data-label="${t('colWhen')}">${formatTime(ctx, r.createdAt)}</td>
<td data-label="${t('colWhat')}">${r.type === 'login' ? t('typeLogin') : html`${t('typeConnection')} (${r.protocol.toUpperCase()})`}</td>
<td data-label="${t('colAddress')}">${r.clientIp}</td>
<td data-label="${t('colClient')}">${r.clientName ?? t('unknownClient')}</td>
<td data-label="${t('colOutcome')}" class="status-${r.status}">${t(STATUS_TEXT[r.status])}</td>
</tr>`,
  );
  const head = { columns: ['colWhen', 'colWhat', 'colAddress', 'colClient', 'colOutcome'] } as const;
  return card(ctx, 'recent', 'recentSection', rows.length === 0 ? html`<p>${t('noRecent')}</p>` : stackTable(ctx, head, rows));
}

/** A question before a change that cannot be undone: its danger button posts to `action`, Cancel goes back. */
function confirmPage(ctx: PageContext, title: TextKey, text: string, action: string, confirm: TextKey): SafeHtml {
  return introPage(ctx, title, text, html`<p class="actions">${postButton(ctx, action, confirm, { className: 'danger' })} <a href="/settings" class="button">${ctx.t('cancel')}</a></p>`);
}

/** "Generate new key" asks first: the key in use stops working at once. */
export function newKeyConfirmPage(ctx: PageContext): SafeHtml {
  return confirmPage(ctx, 'totpNewKeyTitle', ctx.t('totpNewKeyText'), '/settings/totp/start', 'totpNewKeyConfirm');
}

/** "Clear bound device" asks first. */
export function clearConfirmPage(ctx: PageContext, device: DeviceRecord): SafeHtml {
  return confirmPage(ctx, 'clearConfirmTitle', ctx.t('clearConfirmText', { device: device.name }), '/settings/clear-device', 'clearConfirm');
}
