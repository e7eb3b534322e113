import type { Passkey } from '../../core/passkey-service.js';
import { html, type SafeHtml } from './html.js';
import { card, formatTime, formPage, postButton, stackTable, type PageContext } from './layout.js';
import { rememberBox } from './remembered-browser-views.js';
import { anotherMethod } from './sign-in-views.js';
import type { TextKey } from './texts.js';

/** What the settings page shows of the passkeys. */
export interface PasskeySettings {
  list: Pick<Passkey, 'id' | 'name' | 'createdAt' | 'lastUsedAt'>[];
  /** The name field's default: the browser and OS this page is open in. */
  defaultName: string;
}

/** The WebAuthn calls run in the browser: SimpleWebAuthn's own bundle, then the page's passkey.js (no inline script). */
function scripts(): SafeHtml {
  return html`<script src="/vendor/simplewebauthn-browser.js" defer></script>
<script src="/static/passkey.js" defer></script>`;
}

/** Where passkey.js writes how the ceremony went; the texts it may need come with the page, in its language. */
function statusLine(ctx: PageContext): SafeHtml {
  const { t } = ctx;
  return html`<p class="notice" role="status" aria-live="polite" data-testid="passkey-status" data-passkey-status hidden data-waiting="${t('passkeyWaiting')}" data-cancelled="${t(
    'passkeyCancelled',
  )}" data-unsupported="${t('passkeyUnsupported')}" data-failed="${t('unavailable')}"></p>`;
}

/** The settings page's passkeys: each with its name, when added and last used, and a Remove button; then "Add a passkey". */
export function passkeySection(ctx: PageContext, p: PasskeySettings, canChange: boolean): SafeHtml {
  const { t } = ctx;
  const rows = p.list.map(
    (k, i) => html`<tr>
<td data-label="${t('passkeyName')}" id="pk-${i}" data-testid="passkey-name">${k.name}</td>
<td data-label="${t('passkeyAdded')}">${formatTime(ctx, k.createdAt)}</td>
<td data-label="${t('lastUsed')}">${k.lastUsedAt !== undefined ? formatTime(ctx, k.lastUsedAt) : t('never')}</td>
<td>${canChange ? postButton(ctx, '/settings/passkeys/remove', 'passkeyRemove', { hidden: { id: k.id }, describedBy: `pk-${i}`, className: 'danger' }) : ''}</td>
</tr>`,
  );
  const table = stackTable(ctx, { columns: ['passkeyName', 'passkeyAdded', 'lastUsed'], action: 'passkeyRemove', testId: 'passkeys' }, rows);
  const add = html`<div class="passkey-add" data-passkey-ceremony="register" data-options="/settings/passkeys/options" data-verify="/settings/passkeys/register">
<label for="passkey-name">${t('passkeyName')}</label>
<input id="passkey-name" name="name" maxlength="64" autocomplete="off" value="${p.defaultName}">
<button type="button" class="primary" data-testid="passkey-add" data-passkey-start>${t('passkeyAdd')}</button>
${statusLine(ctx)}
<noscript><p class="hint">${t('passkeyUnsupported')}</p></noscript>
</div>
${scripts()}`;
  return card(
    ctx,
    'passkey',
    'passkeySection',
    html`${p.list.length === 0 ? html`<p>${t('passkeyNone')}</p>` : table}
${canChange ? add : html`<p class="hint">${t('stepUp')}</p>`}`,
    'passkeys',
  );
}

/** The second step by passkey: one button starts the browser's prompt; passkey.js sends the answer and follows the redirect. */
/** remember: the box's state, or undefined when remembered browsers are off (no box). */
export function passkeyStepPage(ctx: PageContext, opts: { others: boolean; remember?: boolean | undefined; error?: TextKey }): SafeHtml {
  const { t } = ctx;
  return formPage(
    ctx,
    'passkeyTitle',
    t('passkeyIntro'),
    opts.error,
    html`<div class="card" data-passkey-ceremony="sign-in" data-options="/signin/passkey/options" data-verify="/signin/passkey/verify">
${rememberBox(ctx, opts.remember)}
<button type="button" class="primary" data-testid="passkey-sign-in" data-passkey-start>${t('passkeyContinue')}</button>
${statusLine(ctx)}
<noscript><p class="hint">${t('passkeyUnsupported')}</p></noscript>
</div>
<p class="actions">${anotherMethod(ctx, opts.others)} ${postButton(ctx, '/signin/cancel', 'cancel')}</p>
${scripts()}`,
  );
}
