import type { RecentRequest } from '../../core/request-service.js';
import type { ApprovalRecord, DeviceRecord } from '../../core/types.js';
import { html, type SafeHtml } from './html.js';
import { csrfField, formatTime, layout, postButton, type PageContext } from './layout.js';
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
  approvals: ApprovalRecord[];
  recent: RecentRequest[];
  notice?: TextKey;
  error?: TextKey;
}

const FIXED_TEXT = { bound: 'daemonFixedBound', all: 'daemonFixedAll', off: 'daemonFixedOff' } as const;
const STATUS_TEXT = { approved: 'statusApproved', denied: 'statusDenied', expired: 'statusExpired', pending: 'statusPending' } as const;

/** The signed-in user's page: phone, pairing, the mail-app switch, approvals and recent requests. */
export function settingsPage(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const header = html`<div class="who"><span>${t('signedInAs', { user: m.user })}</span>${postButton(ctx, '/signout', 'signOut')}</div>`;
  return layout(
    ctx,
    t('settingsTitle'),
    html`<h1>${t('settingsTitle')}</h1>
${m.notice ? html`<p class="notice ok" role="status">${t(m.notice)}</p>` : ''}
${m.error ? html`<p class="notice error" role="alert">${t(m.error)}</p>` : ''}
${phoneSection(ctx, m)}
${daemonSection(ctx, m)}
${approvalsSection(ctx, m)}
${recentSection(ctx, m)}`,
    header,
  );
}

function phoneSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const d = m.device;
  if (d) {
    return html`<section aria-labelledby="phone-h" class="card">
<h2 id="phone-h">${t('phoneSection')}</h2>
<dl class="facts">
<dt>${t('deviceName')}</dt><dd data-testid="device-name">${d.name}</dd>
<dt>${t('boundSince')}</dt><dd>${formatTime(ctx, d.createdAt)}</dd>
<dt>${t('lastUsed')}</dt><dd>${d.lastUsedAt !== undefined ? formatTime(ctx, d.lastUsedAt) : t('never')}</dd>
</dl>
${
  m.canChangeMethods
    ? html`<form method="get" action="/settings/clear-device" class="inline"><button type="submit" class="danger">${t('clearDevice')}</button></form>`
    : html`<p class="hint">${t('stepUp')}</p>`
}
</section>`;
  }
  return html`<section aria-labelledby="phone-h" class="card">
<h2 id="phone-h">${t('phoneSection')}</h2>
<p>${t('noPhone')}</p>
${m.pair ? pairingBox(ctx, m.pair) : postButton(ctx, '/settings/pair/start', 'bindPhone', { className: 'primary' })}
<h3>${t('codeSection')}</h3>
<form method="post" action="/settings/pair/code">
${csrfField(ctx)}
<label for="device-code">${t('deviceCode')}</label>
<input id="device-code" name="code" inputmode="numeric" autocomplete="one-time-code" required maxlength="16" aria-describedby="device-code-hint" placeholder="123 456 789">
<p id="device-code-hint" class="hint">${t('codeHint')}</p>
<button type="submit">${t('bind')}</button>
</form>
</section>`;
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
<p class="notice" role="status" aria-live="polite" data-follow="/settings/pair/status">${t('pairWaiting', { time: new Intl.DateTimeFormat(ctx.lang, { timeStyle: 'short' }).format(p.expiresAt) })}</p>
<p class="actions" data-when-done hidden><a href="/settings" class="button">${t('startAgain')}</a></p>
${postButton(ctx, '/settings/pair/cancel', 'cancel')}
</div>`;
}

function daemonSection(ctx: PageContext, m: SettingsModel): SafeHtml {
  const { t } = ctx;
  const { on, fixed } = m.daemon;
  const locked = fixed !== null || !m.canChangeMethods;
  return html`<section aria-labelledby="daemon-h" class="card">
<h2 id="daemon-h">${t('daemonSection')}</h2>
<form method="post" action="/settings/daemon-otp" data-autosubmit>
${csrfField(ctx)}
<div class="switch-row">
<input type="checkbox" role="switch" id="daemon-otp" name="daemonOtp" value="on"${on ? html` checked` : ''}${locked ? html` disabled` : ''} aria-describedby="daemon-help">
<label for="daemon-otp">${t('daemonSwitch')}</label>
<span class="state" aria-hidden="true">${on ? t('on') : t('off')}</span>
</div>
<p id="daemon-help" class="hint">${fixed ? t(FIXED_TEXT[fixed]) : !m.canChangeMethods ? t('stepUp') : t('daemonHelp')}</p>
${locked ? '' : html`<button type="submit" data-save>${t('save')}</button>`}
</form>
</section>`;
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
  return html`<section aria-labelledby="appr-h" class="card">
<h2 id="appr-h">${t('approvalsSection')}</h2>
${
  rows.length === 0
    ? html`<p>${t('noApprovals')}</p>`
    : html`<table class="stack"><thead><tr><th scope="col">${t('colUser')}</th><th scope="col">${t('colAddress')}</th><th scope="col">${t('colClient')}</th><th scope="col">${t(
        'colProtocol',
      )}</th><th scope="col">${t('colUntil')}</th><th scope="col"><span class="sr-only">${t('revoke')}</span></th></tr></thead><tbody>${rows}</tbody></table>`
}
</section>`;
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
  return html`<section aria-labelledby="recent-h" class="card">
<h2 id="recent-h">${t('recentSection')}</h2>
${
  rows.length === 0
    ? html`<p>${t('noRecent')}</p>`
    : html`<table class="stack"><thead><tr><th scope="col">${t('colWhen')}</th><th scope="col">${t('colWhat')}</th><th scope="col">${t('colAddress')}</th><th scope="col">${t(
        'colClient',
      )}</th><th scope="col">${t('colOutcome')}</th></tr></thead><tbody>${rows}</tbody></table>`
}
</section>`;
}

/** "Clear bound device" asks first. */
export function clearConfirmPage(ctx: PageContext, device: DeviceRecord): SafeHtml {
  const { t } = ctx;
  return layout(
    ctx,
    t('clearConfirmTitle'),
    html`<h1>${t('clearConfirmTitle')}</h1>
<p>${t('clearConfirmText', { device: device.name })}</p>
<p class="actions">${postButton(ctx, '/settings/clear-device', 'clearConfirm', { className: 'danger' })} <a href="/settings" class="button">${t('cancel')}</a></p>`,
  );
}
