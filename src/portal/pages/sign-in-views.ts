import { html, type SafeHtml } from './html.js';
import { csrfField, layout, postButton, type PageContext } from './layout.js';
import type { TextKey } from './texts.js';

/** The first step: user name and password. */
export function signInPage(ctx: PageContext, opts: { error?: TextKey; user?: string } = {}): SafeHtml {
  const { t } = ctx;
  return layout(
    ctx,
    t('signInTitle'),
    html`<h1>${t('signInTitle')}</h1>
<p>${t('signInIntro')}</p>
${opts.error ? html`<p class="notice error" role="alert">${t(opts.error)}</p>` : ''}
<form method="post" action="/signin" class="card">
${csrfField(ctx)}
<label for="user">${t('userName')}</label>
<input id="user" name="user" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="255" value="${opts.user ?? ''}">
<label for="password">${t('password')}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
<button type="submit" class="primary">${t('signIn')}</button>
</form>`,
  );
}

/** The second step: the number to tap on the phone, followed live by portal.js. */
export function approvePage(ctx: PageContext, opts: { device: string; number: number }): SafeHtml {
  const { t } = ctx;
  return layout(
    ctx,
    t('approveTitle'),
    html`<h1>${t('approveTitle')}</h1>
<p>${t('approveIntro', { device: opts.device })}</p>
<p class="match" data-testid="match-number" data-while-waiting>${opts.number}</p>
<p class="notice" role="status" aria-live="polite" data-follow="/signin/status">${t('approveWaiting')}</p>
<p class="actions">
<a href="/" class="button" data-when-done hidden>${t('startAgain')}</a>
<noscript><a href="/" class="button">${t('continue')}</a></noscript>
</p>
${postButton(ctx, '/signin/code', 'useCodeInstead')}
${postButton(ctx, '/signin/cancel', 'cancel')}`,
  );
}

/** The push-code step: the six digits the phone shows, typed here; a Yes on the phone moves the page on too. */
export function pushCodePage(ctx: PageContext, opts: { device: string; error?: TextKey }): SafeHtml {
  const { t } = ctx;
  return layout(
    ctx,
    t('pushCodeTitle'),
    html`<h1>${t('pushCodeTitle')}</h1>
<p>${t('pushCodeIntro', { device: opts.device })}</p>
${opts.error ? html`<p class="notice error" role="alert">${t(opts.error)}</p>` : ''}
<form method="post" action="/signin/code/verify" class="card" data-while-waiting>
${csrfField(ctx)}
<label for="code">${t('code')}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit" class="primary">${t('verify')}</button>
</form>
<p class="notice" role="status" aria-live="polite" data-follow="/signin/status">${t('approveWaiting')}</p>
<p class="actions">
<a href="/" class="button" data-when-done hidden>${t('startAgain')}</a>
</p>
${postButton(ctx, '/signin/cancel', 'cancel')}`,
  );
}

/** A short page for errors and the CSRF refusal. */
export function messagePage(ctx: PageContext, title: TextKey, message: TextKey): SafeHtml {
  const { t } = ctx;
  return layout(ctx, t(title), html`<h1>${t(title)}</h1><p role="alert">${t(message)}</p><p><a href="/">${t('home')}</a></p>`);
}
