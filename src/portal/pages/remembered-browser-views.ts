import type { RememberedBrowser } from '../../core/remembered-browsers.js';
import { html, type SafeHtml } from './html.js';
import { csrfField, formatTime, postButton, type PageContext } from './layout.js';

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
  return html`<section aria-labelledby="browsers-h" class="card" id="browsers">
<h2 id="browsers-h">${t('browsersSection')}</h2>
<p class="hint">${t('browsersIntro')}</p>
${
  rows.length === 0
    ? html`<p data-testid="no-remembered-browsers">${t('noBrowsers')}</p>`
    : html`<table class="stack" data-testid="remembered-browsers"><thead><tr><th scope="col">${t('colBrowser')}</th><th scope="col">${t('colAddress')}</th><th scope="col">${t(
        'lastUsed',
      )}</th><th scope="col">${t('colUntil')}</th><th scope="col"><span class="sr-only">${t('revoke')}</span></th></tr></thead><tbody>${rows}</tbody></table>
${postButton(ctx, '/settings/browsers/revoke-all', 'revokeAll', { className: 'danger' })}`
}
</section>`;
}

/**
 * "Remember this browser" on the steps that finish without a form of their own (the phone's tap,
 * the push code's Yes): saved in the sign-in session, at once by portal.js, else by its button.
 */
export function rememberForm(ctx: PageContext, checked: boolean): SafeHtml {
  const { t } = ctx;
  return html`<form method="post" action="/signin/remember" class="inline" data-autosubmit>
${csrfField(ctx)}
<div class="check-row"><input type="checkbox" id="remember" name="remember" value="on"${checked ? html` checked` : ''}><label for="remember">${t('rememberBrowser')}</label></div>
<button type="submit" data-save>${t('save')}</button>
</form>`;
}
