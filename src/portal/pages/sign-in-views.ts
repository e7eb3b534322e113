import { html, type SafeHtml } from './html.js';
import { csrfField, errorNotice, formPage, introPage, postButton, titledPage, type PageContext } from './layout.js';
import type { MethodId } from '../../core/second-factor.js';
import { rememberBox, rememberForm } from './remembered-browser-views.js';
import type { TextKey } from './texts.js';

/** Each method's button name ("Use another method" lists them). */
export const METHOD_TEXT: Record<MethodId, TextKey> = { phone: 'methodPhone', totp: 'methodTotp', passkey: 'methodPasskey', recovery: 'methodRecovery' };

/** "Use another method": only shown when the user has another one. */
export function anotherMethod(ctx: PageContext, show: boolean): SafeHtml | '' {
  return show ? html`<form method="get" action="/signin/choose" class="inline"><button type="submit">${ctx.t('useAnother')}</button></form>` : '';
}

/** The first step: user name and password. */
export function signInPage(ctx: PageContext, opts: { error?: TextKey; user?: string } = {}): SafeHtml {
  const { t } = ctx;
  return formPage(
    ctx,
    'signInTitle',
    t('signInIntro'),
    opts.error,
    html`<form method="post" action="/signin" class="card">
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
/** `remember` on the second-step pages: whether "Remember this browser" is ticked; absent when the admin turned it off. */
export function approvePage(ctx: PageContext, opts: { device: string; number: number; others: boolean; remember?: boolean }): SafeHtml {
  const { t } = ctx;
  return introPage(
    ctx,
    'approveTitle',
    t('approveIntro', { device: opts.device }),
    html`<p class="match" data-testid="match-number" data-while-waiting>${opts.number}</p>
<p class="notice" role="status" aria-live="polite" data-follow="/signin/status?wait=1">${t('approveWaiting')}</p>
<p class="actions">
<a href="/" class="button" data-when-done hidden>${t('startAgain')}</a>
<noscript><a href="/" class="button">${t('continue')}</a></noscript>
</p>
${opts.remember !== undefined ? rememberForm(ctx, opts.remember) : ''}
${postButton(ctx, '/signin/push-code', 'useCodeInstead')}
${anotherMethod(ctx, opts.others)}
${postButton(ctx, '/signin/cancel', 'cancel')}`,
  );
}

/** The second step by a typed code: the authenticator app's or a recovery code. */
export function codePage(ctx: PageContext, opts: { method: 'totp' | 'recovery'; others: boolean; error?: TextKey; remember?: boolean }): SafeHtml {
  const { t } = ctx;
  const totp = opts.method === 'totp';
  return formPage(
    ctx,
    totp ? 'totpTitle' : 'recoveryTitle',
    t(totp ? 'totpIntro' : 'recoveryIntro'),
    opts.error,
    html`<form method="post" action="/signin/code" class="card">
${csrfField(ctx)}
<label for="code">${t('code')}</label>
${
  totp
    ? html`<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" required maxlength="8" autofocus>`
    : html`<input id="code" name="code" autocomplete="off" autocapitalize="none" spellcheck="false" required maxlength="32" autofocus>`
}
${rememberBox(ctx, opts.remember)}
<button type="submit" class="primary">${t('verify')}</button>
</form>
<p class="actions">${anotherMethod(ctx, opts.others)} ${postButton(ctx, '/signin/cancel', 'cancel')}</p>`,
  );
}

/** "Use another method": one button per other method the user has set up. */
export function choosePage(ctx: PageContext, methods: readonly MethodId[], error?: TextKey): SafeHtml {
  return titledPage(
    ctx,
    'chooseTitle',
    html`
${errorNotice(ctx, error)}
<ul class="methods">${methods.map((m) => html`<li>${postButton(ctx, '/signin/method', METHOD_TEXT[m], { hidden: { method: m } })}</li>`)}</ul>
${postButton(ctx, '/signin/cancel', 'cancel')}`,
  );
}

/** The push-code step: the six digits the phone shows, typed here; a Yes on the phone moves the page on too. */
export function pushCodePage(ctx: PageContext, opts: { device: string; others?: boolean; error?: TextKey; remember?: boolean }): SafeHtml {
  const { t } = ctx;
  return formPage(
    ctx,
    'pushCodeTitle',
    t('pushCodeIntro', { device: opts.device }),
    opts.error,
    html`<form method="post" action="/signin/push-code/verify" class="card" data-while-waiting>
${csrfField(ctx)}
<label for="code">${t('code')}</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required>
<button type="submit" class="primary">${t('verify')}</button>
</form>
<p class="notice" role="status" aria-live="polite" data-follow="/signin/status?wait=1">${t('approveWaiting')}</p>
<p class="actions">
<a href="/" class="button" data-when-done hidden>${t('startAgain')}</a>
</p>
${opts.remember !== undefined ? rememberForm(ctx, opts.remember) : ''}
${anotherMethod(ctx, opts.others ?? false)}
${postButton(ctx, '/signin/cancel', 'cancel')}`,
  );
}

/** A short page for errors and the CSRF refusal. */
export function messagePage(ctx: PageContext, title: TextKey, message: TextKey): SafeHtml {
  const { t } = ctx;
  return titledPage(ctx, title, html`<p role="alert">${t(message)}</p><p><a href="/">${t('home')}</a></p>`);
}
