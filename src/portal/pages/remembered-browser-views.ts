import type { RememberedBrowser } from '../../core/remembered-browsers.js';
import { html, type SafeHtml } from './html.js';
import { card, csrfField, formatTime, postButton, stackTable, type PageContext } from './layout.js';

/** What the settings page shows of the remembered browsers; `current` is this browser's id, if remembered. */
export interface BrowsersModel {
  list: RememberedBrowser[];
  current: string | null;
}

/** The settings page's "Remembered browsers": each with its "Revoke", and "Revoke all". */
export function browsersSection(ctx: PageContext, m: BrowsersModel): SafeHtml {
  const { t } = ctx;
  const rows = m.list.map(
    (b, i) => html`<tr data-testid="remembered-browser">
<td data-label="${t('colBrowser')}" id="rb-${i}">${b.os ? `${b.browser} · ${b.os}` : b.browser}${b.id === m.current ? html` <strong>${t('thisBrowser')}</strong>` : ''}</td>
<td data-label="${t('colAddress')}">${b.lastIp ?? b.clientIp}</td>
<td data-label="${t('lastUsed')}">${b.lastUsedAt !== undefined ? formatTime(ctx, b.lastUsedAt) : t('never')}</td>
<td data-label="${t('colUntil')}">${formatTime(ctx, b.expiresAt)}</td>
<td>${postButton(ctx, '/settings/browsers/revoke', 'revoke', { hidden: { id: b.id }, describedBy: `rb-${i}` })}</td>
</tr>`,
  );
  const head = { columns: ['colBrowser', 'colAddress', 'lastUsed', 'colUntil'], action: 'revoke', testId: 'remembered-browsers' } as const;
  return card(
    ctx,
    'browsers',
    'browsersSection',
    html`<p class="hint">${t('browsersIntro')}</p>
${
  rows.length === 0
    ? html`<p data-testid="no-remembered-browsers">${t('noBrowsers')}</p>`
    : html`${stackTable(ctx, head, rows)}
${postButton(ctx, '/settings/browsers/revoke-all', 'revokeAll', { className: 'danger' })}`
}`,
    'browsers',
  );
}

/** The "Remember this browser" box, ticked or not; nothing when the admin turned the feature off (undefined). */
export function rememberBox(ctx: PageContext, checked: boolean | undefined): SafeHtml | '' {
  if (checked === undefined) return '';
  return html`<div class="check-row"><input type="checkbox" id="remember" name="remember" value="on"${checked ? html` checked` : ''}><label for="remember">${ctx.t('rememberBrowser')}</label></div>`;
}

/**
 * "Remember this browser" on the steps that finish without a form of their own (the phone's tap,
 * the push code's Yes): saved in the sign-in session, at once by portal.js, else by its button.
 */
export function rememberForm(ctx: PageContext, checked: boolean): SafeHtml {
  const { t } = ctx;
  return html`<form method="post" action="/signin/remember" class="inline" data-autosubmit>
${csrfField(ctx)}
${rememberBox(ctx, checked)}
<button type="submit" data-save>${t('save')}</button>
</form>`;
}
